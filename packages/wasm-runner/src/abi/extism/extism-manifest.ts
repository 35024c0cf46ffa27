import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { checkManifestPaths, isInsideFolder, manifestSchema } from '@corral/manifest'
import type { FieldError, Manifest } from '@corral/types'
import { formatFieldPath, isPluginError, PluginError } from '@corral/types'

/** One module of an Extism manifest: a file in the plugin's folder, or the bytes themselves. */
export type ExtismWasmSource =
  | { path: string; name?: string; hash?: string }
  | { data: Uint8Array | string; name?: string; hash?: string }

/** An Extism manifest, as Extism's SDKs take it (the fields Corral understands). */
export interface ExtismManifest {
  wasm: ExtismWasmSource[]
  /** Config values; what `config_get` returns. */
  config?: Record<string, string>
  /** Host globs the plugin may reach with `http_request`. */
  allowed_hosts?: string[]
  /**
   * Host directory (inside the plugin's folder) → guest path, which must be `/<directory>`: that is
   * where Corral's WASI shows it. A host directory written `ro:dir` is read-only.
   */
  allowed_paths?: Record<string, string>
  /** Bounds of the Extism kernel, as Extism documents them (`wasm.extism` in the Corral manifest). */
  memory?: { max_pages?: number; max_var_bytes?: number; max_http_response_bytes?: number }
  timeout_ms?: number
}

/** Options of {@link fromExtismManifest}. */
export interface FromExtismManifestOptions {
  /** The plugin's Corral name (an Extism manifest has none). */
  name: string
  /** The plugin's version. Default `0.0.0`. */
  version?: string
  /** The plugin's folder: `wasm[0].path` and `allowed_paths` are relative to it. */
  dir: string
}

/** What an Extism manifest becomes. */
export interface ExtismConversion {
  /** A validated Corral manifest; its `resources` request what the Extism manifest allowed. */
  manifest: Manifest
  /**
   * The module's bytes, their `hash` checked. For a `data` module, `manifest.entry.wasm` is
   * `<name>.wasm` (the module's `name`, else the plugin's): write these bytes there, in the plugin's
   * folder, before the runner loads it.
   */
  wasm: Uint8Array
}

const knownFields = new Set(['wasm', 'config', 'allowed_hosts', 'allowed_paths', 'memory', 'timeout_ms'])

/**
 * Turns an Extism manifest into a Corral {@link Manifest}: `allowed_hosts` becomes an `http`
 * permission, `allowed_paths` `fs` permissions (`ro:` ones read-only), `memory` the kernel's
 * bounds (`wasm.extism`, which also marks the module to be run as an Extism plugin whatever it
 * imports; the guest's own memory stays the grant's `memory_mb`), `timeout_ms` the `call_timeout`,
 * `config` the config defaults. The result is checked by `@corral/manifest`'s schema, so it is as
 * valid as a parsed `plugin.yaml`.
 *
 * A manifest Corral cannot honour fails with `manifest_invalid`, its `fields` written as Extism
 * fields (`allowed_hosts[1]`): more than one module, a `url` module, a path outside `dir`.
 * A module whose SHA-256 differs from its `hash` fails with `load_failed`: the manifest is fine,
 * the module is not the one it names, and a module that does not load is `load_failed` throughout
 * Corral.
 *
 * @example
 * const { manifest, wasm } = await fromExtismManifest(
 *   { wasm: [{ path: 'count_vowels.wasm', hash: '93898457...' }], allowed_hosts: ['api.example.com'] },
 *   { name: 'count-vowels', dir: '/plugins/count-vowels' },
 * )
 */
export async function fromExtismManifest(
  input: ExtismManifest,
  options: FromExtismManifestOptions,
): Promise<ExtismConversion> {
  const fields = checkShape(input)
  if (fields.length > 0) throw invalid(fields)
  const source = input.wasm[0] as ExtismWasmSource
  const permissions: Array<{ type: string; access?: string[]; scope: string[] }> = []
  // Where each permission came from, to name Corral's findings in Extism's terms.
  const origins: Array<(scopeIndex: number) => string> = []
  if (input.allowed_hosts !== undefined && input.allowed_hosts.length > 0) {
    permissions.push({ type: 'http', scope: input.allowed_hosts.map((h) => h.toLowerCase()) })
    origins.push((j) => `allowed_hosts[${j}]`)
  }
  for (const [hostDir, guestPath] of Object.entries(input.allowed_paths ?? {})) {
    const readOnly = hostDir.startsWith('ro:')
    const dir = path.posix.normalize(readOnly ? hostDir.slice(3) : hostDir).replace(/\/+$/, '')
    permissions.push({ type: 'fs', access: readOnly ? ['read'] : ['read', 'write'], scope: [dir] })
    origins.push(() => `allowed_paths.${hostDir}`)
    // Corral's WASI shows a granted directory at /<its path in the plugin's folder>; a plugin built
    // to find it elsewhere would not, so such a mapping is refused rather than silently moved.
    const insideFolder = isInsideFolder(options.dir, path.resolve(options.dir, dir))
    const shown =
      typeof guestPath === 'string' ? path.posix.normalize(guestPath).replace(/\/+$/, '') : undefined
    if (insideFolder && shown !== `/${dir}`) {
      fields.push({
        field: `allowed_paths.${hostDir}`,
        message: `must be /${dir}: Corral shows the directory there`,
      })
    }
  }
  const resources: Record<string, unknown> = { permissions }
  if (input.timeout_ms !== undefined) resources.call_timeout = `${input.timeout_ms}ms`
  const entry = 'path' in source ? source.path : `${source.name ?? options.name}.wasm`
  const candidate = {
    name: options.name,
    version: options.version ?? '0.0.0',
    runtime: 'wasm',
    entry: { wasm: entry },
    wasm: { extism: { ...input.memory } },
    resources,
    config: input.config ?? {},
  }
  const result = manifestSchema.safeParse(candidate)
  if (!result.success) {
    for (const issue of result.error.issues) {
      fields.push({
        field: extismField(issue.path as Array<string | number>, origins),
        message: issue.message,
      })
    }
  }
  if (!result.success || fields.length > 0) throw invalid(fields)
  // A path that leaves the folder through a symbolic link is refused like one written with '..': the
  // module's path, the file a `data` module is to be written to (its name), and the allowed paths.
  // Resolved now, on every conversion: a link may have been planted since the last one.
  try {
    await checkManifestPaths(result.data, options.dir)
  } catch (error) {
    if (!isPluginError(error) || error.code !== 'manifest_invalid') throw error
    const moduleField = 'path' in source ? 'wasm[0].path' : 'wasm[0].name'
    throw invalid(error.fields.map((f) => ({ ...f, field: extismPathField(f.field, moduleField, origins) })))
  }
  const wasm = 'path' in source ? await readModule(options.dir, source.path) : decodeData(source.data)
  if (source.hash !== undefined) {
    const actual = createHash('sha256').update(wasm).digest('hex')
    if (actual !== source.hash.toLowerCase()) {
      throw new PluginError(
        'load_failed',
        `wasm[0].hash: the module's SHA-256 is ${actual}, the manifest names ${source.hash}`,
        { plugin: options.name },
      )
    }
  }
  return { manifest: result.data, wasm }
}

/** Corral's field path of a finding, as the Extism field it came from. */
function extismField(
  issuePath: Array<string | number>,
  origins: Array<(scopeIndex: number) => string>,
): string {
  const [top, second, index, fourth, scopeIndex] = issuePath
  if (top === 'resources' && second === 'permissions' && typeof index === 'number') {
    const origin = origins[index]
    if (origin !== undefined)
      return origin(fourth === 'scope' && typeof scopeIndex === 'number' ? scopeIndex : 0)
  }
  if (top === 'wasm' && second === 'extism' && typeof index === 'string') return `memory.${index}`
  if (top === 'resources' && second === 'call_timeout') return 'timeout_ms'
  if (top === 'entry') return 'wasm[0].path'
  return formatFieldPath(issuePath)
}

/** An Extism field for a field `checkManifestPaths` names (`entry.wasm`, `resources.permissions[i].scope[j]`). */
function extismPathField(
  field: string,
  moduleField: string,
  origins: Array<(scopeIndex: number) => string>,
): string {
  if (field === 'entry.wasm') return moduleField
  const scope = /^resources\.permissions\[(\d+)\]\.scope\[(\d+)\]$/.exec(field)
  const origin = scope === null ? undefined : origins[Number(scope[1])]
  return origin === undefined ? field : origin(Number(scope?.[2]))
}

/** The shape checks Corral's schema cannot make, because they concern Extism's own fields. */
function checkShape(input: ExtismManifest): FieldError[] {
  const fields: FieldError[] = []
  if (typeof input !== 'object' || input === null) return [{ field: '(root)', message: 'must be an object' }]
  for (const key of Object.keys(input)) {
    if (!knownFields.has(key))
      fields.push({ field: key, message: 'is not an Extism manifest field Corral supports' })
  }
  if (!Array.isArray(input.wasm) || input.wasm.length !== 1) {
    fields.push({
      field: 'wasm',
      message: 'must list exactly one module (Corral runs single-module plugins)',
    })
  } else {
    const source = input.wasm[0] as Record<string, unknown>
    const hasPath = typeof source.path === 'string'
    const hasData = source.data instanceof Uint8Array || typeof source.data === 'string'
    if ('url' in source)
      fields.push({ field: 'wasm[0].url', message: 'is not supported: name a file or give the bytes' })
    else if (hasPath === hasData) fields.push({ field: 'wasm[0]', message: 'must have either path or data' })
    if (
      source.hash !== undefined &&
      (typeof source.hash !== 'string' || !/^[0-9a-fA-F]{64}$/.test(source.hash))
    ) {
      fields.push({ field: 'wasm[0].hash', message: 'must be a SHA-256 digest in hex' })
    }
  }
  if (input.config !== undefined) {
    if (typeof input.config !== 'object' || input.config === null || Array.isArray(input.config)) {
      fields.push({ field: 'config', message: 'must be an object of strings' })
    } else {
      for (const [key, value] of Object.entries(input.config)) {
        if (typeof value !== 'string') fields.push({ field: `config.${key}`, message: 'must be a string' })
      }
    }
  }
  if (input.allowed_hosts !== undefined && !isStringArray(input.allowed_hosts)) {
    fields.push({ field: 'allowed_hosts', message: 'must be a list of host globs' })
  }
  if (input.allowed_paths !== undefined) {
    const paths = input.allowed_paths as unknown
    if (typeof paths !== 'object' || paths === null || Array.isArray(paths)) {
      fields.push({ field: 'allowed_paths', message: 'must map host directories to guest paths' })
    }
  }
  const pages = input.memory?.max_pages
  if (pages !== undefined && (!Number.isInteger(pages) || pages < 1 || pages > 65_536)) {
    fields.push({ field: 'memory.max_pages', message: 'must be a whole number of 64 KiB pages, 1 to 65536' })
  }
  const timeout = input.timeout_ms
  if (timeout !== undefined && (!Number.isInteger(timeout) || timeout < 1)) {
    fields.push({ field: 'timeout_ms', message: 'must be a whole number of milliseconds, at least 1' })
  }
  return fields
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string')
}

async function readModule(dir: string, file: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path.resolve(dir, file)))
  } catch (cause) {
    throw new PluginError('load_failed', `cannot read wasm[0].path ${file}: ${(cause as Error).message}`, {
      cause,
    })
  }
}

/** `data` is bytes, or base64 text as in an Extism manifest written as JSON. */
function decodeData(data: Uint8Array | string): Uint8Array {
  return typeof data === 'string' ? new Uint8Array(Buffer.from(data, 'base64')) : data
}

function invalid(fields: FieldError[]): PluginError {
  const list = fields.map((f) => `  ${f.field}: ${f.message}`).join('\n')
  const count = fields.length === 1 ? '1 problem' : `${fields.length} problems`
  return new PluginError('manifest_invalid', `the Extism manifest has ${count}:\n${list}`, { fields })
}
