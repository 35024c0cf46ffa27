import { readFile, stat } from 'node:fs/promises'
import path from 'node:path'
import { defaultLimits, maxManifestBytes, parseManifest, parseRegistration } from '@corral/manifest'
import type { Manifest } from '@corral/types'
import { PluginError } from '@corral/types'
import { type ExtismManifest, fromExtismManifest, readRegistration } from '@corral/wasm-runner'

/** The Extism manifest a plugin folder without `plugin.yaml` may hold instead. */
export const extismManifestFile = 'manifest.json'

/** The identity fields a registration gives a bare module's manifest. */
const identityFields = [
  'name',
  'version',
  'description',
  'author',
  'license',
  'homepage',
  'min_host_version',
] as const

/**
 * The manifest of a bare `.wasm` file, from what its `corral_register` says (run once in a worker
 * of its own, within the default limits, host calls refused): its name, version and identity,
 * runtime `wasm`, the file as entry, and the restrictive default request: no permissions and the
 * default limits. Its registration is checked against that manifest here, so a module that claims
 * permissions (which only a `plugin.yaml` can request) is refused at discovery, saying so.
 */
export async function describeBareWasm(file: string): Promise<Manifest> {
  const label = path.basename(file)
  const registration = await readRegistration(new Uint8Array(await readFile(file)), {
    label,
    limits: defaultLimits,
  })
  if (registration === null || typeof registration !== 'object' || Array.isArray(registration)) {
    throw new PluginError('load_failed', `${label}: corral_register did not return an object`)
  }
  const said = registration as Record<string, unknown>
  const identity = Object.fromEntries(
    identityFields.flatMap((key) => (key in said ? [[key, said[key]]] : [])),
  )
  const manifest = parseManifest(
    JSON.stringify({ ...identity, runtime: 'wasm', entry: { wasm: label }, resources: { permissions: [] } }),
    { source: `${label} (its corral_register)` },
  )
  try {
    parseRegistration(registration, manifest)
  } catch (error) {
    throw new PluginError(
      'load_failed',
      `${label}: ${PluginError.from(error).rawMessage}\n(a bare module requests no permissions: put it in a folder with a plugin.yaml to request some)`,
      { plugin: manifest.name, cause: error },
    )
  }
  return manifest
}

/** Whether a plugin folder describes itself with an Extism manifest instead of a `plugin.yaml`. */
export async function hasExtismManifest(dir: string): Promise<boolean> {
  const [yaml, extism] = await Promise.all(
    ['plugin.yaml', extismManifestFile].map((file) => stat(path.join(dir, file)).catch(() => undefined)),
  )
  return yaml === undefined && extism?.isFile() === true
}

/**
 * The manifest of a folder holding an Extism manifest (`manifest.json`) and no `plugin.yaml`:
 * converted by `fromExtismManifest`, named after the folder, version `0.0.0`. Its module must be a
 * file of the folder (`wasm[0].path`): the manager writes nothing into plugin folders.
 */
export async function describeExtismFolder(dir: string): Promise<Manifest> {
  const file = path.join(dir, extismManifestFile)
  const invalid = (message: string, cause?: unknown) =>
    new PluginError('manifest_invalid', `${file}: ${message}`, {
      fields: [{ field: '(root)', message }],
      cause,
    })
  if ((await stat(file)).size > maxManifestBytes) throw invalid(`is larger than ${maxManifestBytes} bytes`)
  let parsed: ExtismManifest
  try {
    parsed = JSON.parse(await readFile(file, 'utf8')) as ExtismManifest
  } catch (error) {
    throw invalid(`is not JSON: ${(error as Error).message}`, error)
  }
  const source = Array.isArray(parsed?.wasm) ? parsed.wasm[0] : undefined
  if (source !== undefined && 'data' in source) {
    throw invalid("wasm[0].data is not taken from a file: name the module's file in wasm[0].path")
  }
  const { manifest } = await fromExtismManifest(parsed, { name: path.basename(dir), dir })
  return manifest
}
