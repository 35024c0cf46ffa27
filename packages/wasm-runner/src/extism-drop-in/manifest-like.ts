import { createHash } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { PluginError } from '@corral/types'
import type { ExtismManifest } from '../abi/extism/extism-manifest.js'

/** One module of a manifest, as Extism JS takes it (the sources Corral can load). */
export type ManifestWasm = ({ path: string } | { data: Uint8Array | ArrayBuffer }) & {
  name?: string
  hash?: string
}

/** A manifest as Extism JS takes it: its own camelCase fields, or the snake_case of Extism's JSON manifests. */
export interface Manifest {
  wasm: ManifestWasm[]
  config?: Record<string, string>
  allowedHosts?: string[]
  allowed_hosts?: string[]
  allowedPaths?: Record<string, string>
  allowed_paths?: Record<string, string>
  memory?: {
    maxPages?: number
    max_pages?: number
    maxVarBytes?: number
    max_var_bytes?: number
    maxHttpResponseBytes?: number
    max_http_response_bytes?: number
  }
  timeoutMs?: number | null
  timeout_ms?: number | null
}

/**
 * What `createPlugin` takes: a {@link Manifest}; its JSON text; the path (or `file:` URL) of a
 * `.wasm` file; or the module's bytes. Extism JS also fetches `http(s):` URLs and takes a
 * `WebAssembly.Module`; Corral does neither (it checks and caps the module's bytes itself, and a
 * plugin host downloads nothing behind its administrator's back).
 */
export type ManifestLike = Manifest | string | URL | ArrayBuffer | Uint8Array

/** A manifest made ready for `fromExtismManifest`: the plugin's folder and the manifest in Extism's JSON form. */
export interface ResolvedManifest {
  dir: string
  manifest: ExtismManifest
  /** Removes the folder made for a module given as bytes (nothing otherwise). */
  cleanup(): Promise<void>
}

function invalid(message: string): PluginError {
  return new PluginError('manifest_invalid', message)
}

async function toManifest(input: ManifestLike): Promise<Manifest> {
  if (input instanceof URL) {
    if (input.protocol !== 'file:') throw invalid(`Corral loads no module from ${input.protocol} URLs`)
    return { wasm: [{ path: fileURLToPath(input) }] }
  }
  if (typeof input === 'string') {
    if (input.trimStart().startsWith('{')) {
      try {
        return JSON.parse(input) as Manifest
      } catch (error) {
        throw invalid(`the manifest text is not JSON: ${(error as Error).message}`)
      }
    }
    if (/^https?:\/\//.test(input)) throw invalid('Corral loads no module from http(s) URLs')
    return input.startsWith('file:') ? toManifest(new URL(input)) : { wasm: [{ path: input }] }
  }
  if (input instanceof Uint8Array || input instanceof ArrayBuffer) return { wasm: [{ data: input }] }
  return input
}

/**
 * Resolves what `createPlugin` was given: a module file's folder becomes the plugin's folder; a
 * module given as bytes is written to a new temporary folder (removed by `cleanup`). Host paths in
 * `allowedPaths` become paths inside that folder, as Corral grants them.
 */
export async function resolveManifest(input: ManifestLike): Promise<ResolvedManifest> {
  const manifest = await toManifest(input)
  if (!Array.isArray(manifest.wasm) || manifest.wasm.length !== 1) {
    throw invalid('a manifest needs exactly one module in wasm (Corral loads one module per plugin)')
  }
  const source = manifest.wasm[0] as ManifestWasm
  let dir: string
  let file: string
  let cleanup = async () => {}
  if ('path' in source) {
    const resolved = path.resolve(source.path)
    dir = path.dirname(resolved)
    file = path.basename(resolved)
  } else {
    const bytes = source.data instanceof ArrayBuffer ? new Uint8Array(source.data) : source.data
    dir = await mkdtemp(path.join(tmpdir(), 'corral-extism-'))
    cleanup = () => rm(dir, { recursive: true, force: true })
    file = 'plugin.wasm'
    await writeFile(path.join(dir, file), bytes)
  }
  const hash =
    source.hash ??
    createHash('sha256')
      .update(await readFile(path.join(dir, file)))
      .digest('hex')
  const allowedPaths: Record<string, string> = {}
  for (const [host, guest] of Object.entries(manifest.allowedPaths ?? manifest.allowed_paths ?? {})) {
    const readOnly = host.startsWith('ro:')
    const relative = path.relative(dir, path.resolve(dir, readOnly ? host.slice(3) : host)) || '.'
    allowedPaths[`${readOnly ? 'ro:' : ''}${relative}`] = guest
  }
  const memory = manifest.memory ?? {}
  const extism: ExtismManifest = {
    wasm: [{ path: file, hash }],
    config: manifest.config ?? {},
    allowed_hosts: manifest.allowedHosts ?? manifest.allowed_hosts ?? [],
    allowed_paths: allowedPaths,
    memory: dropUndefined({
      max_pages: memory.maxPages ?? memory.max_pages,
      max_var_bytes: memory.maxVarBytes ?? memory.max_var_bytes,
      max_http_response_bytes: memory.maxHttpResponseBytes ?? memory.max_http_response_bytes,
    }),
  }
  const timeout = manifest.timeoutMs ?? manifest.timeout_ms
  if (typeof timeout === 'number') extism.timeout_ms = timeout
  return { dir, manifest: extism, cleanup }
}

function dropUndefined<T extends Record<string, unknown>>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T
}
