import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { defaultLimits, effectiveGrant, matchAnyScope } from '@corral/manifest'
import type { HostCallHandler, LogLevel } from '@corral/types'
import { PluginError } from '@corral/types'
import type { ExtismHostFunctions } from '../abi/extism/current-plugin.js'
import { PluginOutput } from '../abi/extism/current-plugin.js'
import { fromExtismManifest } from '../abi/extism/extism-manifest.js'
import type { ModuleInfo } from '../abi/wasm-binary.js'
import { readModuleInfo } from '../abi/wasm-binary.js'
import type { WasmPlugin } from '../host/wasm-plugin.js'
import { createWasmRunner } from '../host/wasm-runner.js'
import type { ManifestLike } from './manifest-like.js'
import { resolveManifest } from './manifest-like.js'

/** The logger Extism JS takes: a `Console`, or anything with its four methods. */
export type ExtismLogger = Pick<Console, 'debug' | 'info' | 'warn' | 'error'>

/** Options of {@link createPlugin}: Extism JS's, and the limits Corral adds. */
export interface ExtismPluginOptions {
  /** Accepted for Extism JS's sake: WASI preview 1 is offered to every module that imports it. */
  useWasi?: boolean
  /** Accepted for Extism JS's sake: a Corral plugin always runs in worker threads. */
  runInWorker?: boolean
  /** Where the plugin's `log_*` go. Default `console`. */
  logger?: ExtismLogger
  /** User host functions by module, then name: `(plugin: CurrentPlugin, ...args) => result`, sync or async. */
  functions?: ExtismHostFunctions
  /** Host directory (inside the module's folder; `ro:` for read-only) → guest path, which must be `/<its path in the folder>`. */
  allowedPaths?: Record<string, string>
  /** Host globs `http_request` may reach; none by default. */
  allowedHosts?: string[]
  /** What `config_get` reads; over the manifest's. */
  config?: Record<string, string>
  /** The `fetch` `http_request` uses. Default the global one. */
  fetch?: typeof fetch
  /** How long one call may run; past it the call fails with `deadline_exceeded` and its worker is replaced. Default 5 s. */
  timeoutMs?: number | null
  /** The kernel's bounds, as Extism documents them. */
  memory?: { maxPages?: number; maxVarBytes?: number; maxHttpResponseBytes?: number }
  /** The cap on the guest's own linear memory, in MiB (Corral's). Default 128. */
  memoryMb?: number
  /** How many instances (worker threads) may serve calls at once (Corral's). Default 1, as Extism runs one. */
  maxInstances?: number
}

/** A loaded plugin, as Extism JS's `Plugin`. */
export interface ExtismPlugin {
  /**
   * Calls export `funcName` with `input` (text as UTF-8, a number as its decimal text); resolves
   * with its output, or `null` when it wrote none. Fails with a `PluginError`: the plugin's own
   * error (`plugin_error`), a trap, `deadline_exceeded` past `timeoutMs`, `unimplemented` for a
   * missing export.
   */
  call(funcName: string, input?: string | number | Uint8Array): Promise<PluginOutput | null>
  /** Whether the module exports a function `funcName`. */
  functionExists(funcName: string): Promise<boolean>
  /** The module's exports and imports, as `WebAssembly.Module.exports/imports` list them. */
  getExports(): Promise<WebAssembly.ModuleExportDescriptor[]>
  getImports(): Promise<WebAssembly.ModuleImportDescriptor[]>
  /** Whether a call is running. */
  isActive(): boolean
  /**
   * Extism's reset: true when no call runs. Kernel memory is dropped before every call anyway;
   * vars are kept (they outlive calls, as Extism's do).
   */
  reset(): Promise<boolean>
  /** Stops the plugin: its workers, and the folder made for a module given as bytes. */
  close(): Promise<void>
}

const encoder = new TextEncoder()

function toBytes(input: string | number | Uint8Array | undefined): Uint8Array {
  if (input === undefined) return new Uint8Array(0)
  if (input instanceof Uint8Array) return input
  return encoder.encode(String(input))
}

/** Which logger method logs each level. */
const logLevelMethod: Record<LogLevel, keyof ExtismLogger> = {
  trace: 'debug',
  debug: 'debug',
  info: 'info',
  warn: 'warn',
  error: 'error',
}

/** The host API an Extism plugin gets from the drop-in: its logs, and HTTP to `allowedHosts` only. */
function dropInHostApi(options: ExtismPluginOptions, allowedHosts: readonly string[]): HostCallHandler {
  const logger = options.logger ?? console
  const doFetch = options.fetch ?? globalThis.fetch
  return async (method, args) => {
    if (method === 'log') {
      const { level, message } = args as { level: LogLevel; message: string }
      logger[logLevelMethod[level] ?? 'info'](message)
      return null
    }
    if (method === 'http.request') {
      const request = args as { method: string; url: string; headers?: Record<string, string>; body?: string }
      const url = new URL(request.url)
      if (!matchAnyScope(allowedHosts, url.hostname)) {
        throw new PluginError(
          'permission_denied',
          `HTTP request to ${url.hostname} is not allowed (allowedHosts)`,
        )
      }
      // No redirect is followed: one could lead outside allowedHosts.
      const init: RequestInit = { method: request.method, headers: request.headers ?? {}, redirect: 'manual' }
      if (request.body !== undefined) init.body = Buffer.from(request.body, 'base64')
      const response = await doFetch(url, init)
      return {
        status: response.status,
        headers: Object.fromEntries([...(response.headers as unknown as Iterable<[string, string]>)]),
        body: Buffer.from(await response.arrayBuffer()).toString('base64'),
      }
    }
    throw new PluginError('unimplemented', `host method ${method} is not available to an Extism plugin`)
  }
}

/**
 * Loads an Extism plugin as Extism JS's `createPlugin` does, with the same arguments, but runs it
 * under Corral: in worker threads with calls stopped for real at `timeoutMs`, the guest's memory
 * capped, vars and kernel memory bounded, HTTP only to `allowedHosts`, files only in
 * `allowedPaths`. An Extism JS user switches with one import.
 *
 * @example
 * import { createPlugin } from '@corral/wasm-runner/extism'
 *
 * const plugin = await createPlugin('count_vowels.wasm', { useWasi: true, config: { thing: 'x' } })
 * try {
 *   const output = await plugin.call('count_vowels', 'Hello, world!')
 *   console.log(output?.json()) // { count: 3, ... }
 * } finally {
 *   await plugin.close()
 * }
 */
export async function createPlugin(
  manifestLike: ManifestLike | PromiseLike<ManifestLike>,
  options: ExtismPluginOptions = {},
): Promise<ExtismPlugin> {
  const resolved = await resolveManifest(await manifestLike)
  const logger = options.logger ?? console
  const runner = createWasmRunner({
    // As under Extism, a plugin serves on after a trap or a timeout: its instance is replaced at
    // once, however often, and the plugin is never quarantined.
    restart: { maxRestarts: Number.POSITIVE_INFINITY, initialBackoffMs: 0, maxBackoffMs: 0 },
    logger: { log: (level, message) => logger[logLevelMethod[level]](message) },
  })
  try {
    const extism = resolved.manifest
    extism.config = { ...extism.config, ...options.config }
    extism.allowed_hosts = [...(extism.allowed_hosts ?? []), ...(options.allowedHosts ?? [])]
    extism.allowed_paths = { ...extism.allowed_paths, ...options.allowedPaths }
    const { maxPages, maxVarBytes, maxHttpResponseBytes } = options.memory ?? {}
    const memory = { ...extism.memory }
    if (maxPages !== undefined) memory.max_pages = maxPages
    if (maxVarBytes !== undefined) memory.max_var_bytes = maxVarBytes
    if (maxHttpResponseBytes !== undefined) memory.max_http_response_bytes = maxHttpResponseBytes
    extism.memory = memory
    if (typeof options.timeoutMs === 'number') extism.timeout_ms = options.timeoutMs
    const { manifest } = await fromExtismManifest(extism, { name: 'extism-plugin', dir: resolved.dir })
    const maxInstances = options.maxInstances ?? 1
    manifest.wasm = { ...manifest.wasm, pool: { max_instances: maxInstances, wait_timeout: 60_000 } }
    // What the caller allowed is what the plugin gets: the caller is its administrator here.
    const grant = effectiveGrant(manifest.resources, {
      plugin: manifest.name,
      status: 'approved',
      grants: manifest.resources.permissions,
      limits: {
        ...defaultLimits,
        memory_mb: options.memoryMb ?? defaultLimits.memory_mb,
        max_instances: maxInstances,
        // A user host function's call carries the kernel memory (bounded by max_pages and memory_mb).
        max_host_call_bytes: Math.max(
          defaultLimits.max_host_call_bytes,
          (2 * (options.memoryMb ?? 128)) << 20,
        ),
      },
      rate_limits: { calls_per_second: 1e9, db_queries_per_minute: 0, http_requests_per_minute: 1e9 },
    })
    const plugin = (await runner.load({
      manifest,
      dir: resolved.dir,
      grant,
      hostApi: dropInHostApi(options, extism.allowed_hosts),
      extismFunctions: options.functions ?? {},
    })) as WasmPlugin
    await plugin.init(manifest.config)
    const file = 'wasm' in manifest.entry ? manifest.entry.wasm : ''
    const info = readModuleInfo(await readFile(path.join(resolved.dir, file)))
    return dropInPlugin(plugin, info, async () => {
      await runner.close()
      await resolved.cleanup()
    })
  } catch (error) {
    await runner.close()
    await resolved.cleanup()
    throw error
  }
}

function dropInPlugin(plugin: WasmPlugin, info: ModuleInfo, close: () => Promise<void>): ExtismPlugin {
  const exports = info.exports.map(({ name, kind }) => ({ name, kind }) as WebAssembly.ModuleExportDescriptor)
  const imports = info.imports.map(
    ({ module, name, kind }) => ({ module, name, kind }) as WebAssembly.ModuleImportDescriptor,
  )
  let active = 0
  let closing: Promise<void> | undefined
  return {
    async call(funcName, input) {
      active++
      try {
        const output = await plugin.callBytes(funcName, toBytes(input))
        return output.byteLength === 0 ? null : new PluginOutput(output)
      } finally {
        active--
      }
    },
    async functionExists(funcName) {
      return exports.some((e) => e.kind === 'function' && e.name === funcName)
    },
    async getExports() {
      return exports
    },
    async getImports() {
      return imports
    },
    isActive: () => active > 0,
    async reset() {
      return active === 0
    },
    close() {
      closing ??= close()
      return closing
    },
  }
}
