import { readFile, realpath } from 'node:fs/promises'
import path from 'node:path'
import type { LoadOptions, Plugin, PluginErrorCode, Runner } from '@corral/types'
import { PluginError } from '@corral/types'
import { defaultMaxHttpResponseBytes } from './extism/kernel.js'
import { defaultMaxVarBytes, ExtismVarStore } from './extism/var-store.js'
import { resolvePreopens } from './fs-sandbox.js'
import { GuestWorker, type GuestWorkerOptions } from './guest-worker.js'
import { WasmInstancePool } from './instance-pool.js'
import { ModuleCache } from './module-cache.js'
import { SpareWorkers } from './spare-workers.js'
import { wasmPageBytes } from './wasm-binary.js'
import { WasmPlugin } from './wasm-plugin.js'

/** Options of {@link createWasmRunner}. */
export interface WasmRunnerOptions {
  /** How many compiled modules to keep, by content hash. Default 64. */
  moduleCacheSize?: number
}

/** Loads WASM plugins; see {@link createWasmRunner}. */
export interface WasmRunner extends Runner {
  readonly runtime: 'wasm'
}

const mib = 1024 * 1024

/** The pool a manifest without `wasm.pool` gets. */
const defaultPool = { max_instances: 4, wait_timeout: 5_000 }

function loadFailure(plugin: string, error: unknown): PluginError {
  const failure = PluginError.from(error, 'load_failed', plugin)
  const code: PluginErrorCode = failure.code === 'incompatible' ? 'incompatible' : 'load_failed'
  if (failure.code === code && failure.plugin === plugin) return failure
  return new PluginError(code, failure.rawMessage, { plugin, cause: failure })
}

async function readModuleFile(dir: string, file: string, plugin: string): Promise<Uint8Array> {
  const root = await realpath(dir)
  let resolved: string
  try {
    resolved = await realpath(path.resolve(root, file))
  } catch {
    throw new PluginError('load_failed', `no module at ${file} (was the plugin built?)`, { plugin })
  }
  const rel = path.relative(root, resolved)
  if (rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new PluginError('load_failed', `the module ${file} is outside the plugin's folder`, { plugin })
  }
  return new Uint8Array(await readFile(resolved))
}

/**
 * Creates the WASM runner: it loads plugins written against Corral ABI v1 and runs each in a pool
 * of worker-thread instances, enforcing the grant's limits (memory cap, call/init/shutdown
 * timeouts, output size) and its `fs` permissions (WASI preopens).
 *
 * @example
 * const runner = createWasmRunner()
 * const plugin = await runner.load({ manifest, dir, grant, hostApi })
 * await plugin.register()
 * await plugin.init({ greeting: 'Hello' })
 * await plugin.call('greet', { name: 'Ada' }, { timeoutMs: 500 })
 * await runner.close()
 */
export function createWasmRunner(options: WasmRunnerOptions = {}): WasmRunner {
  const cache = new ModuleCache(options.moduleCacheSize)
  const spares = new SpareWorkers()
  const loaded = new Set<Plugin>()
  let closed = false

  return {
    runtime: 'wasm',

    async load({ manifest, dir, grant, hostApi }: LoadOptions): Promise<Plugin> {
      const plugin = manifest.name
      if (closed) throw new PluginError('unavailable', 'the WASM runner is closed', { plugin })
      if (manifest.runtime !== 'wasm' || !('wasm' in manifest.entry)) {
        throw new PluginError('load_failed', `runtime ${manifest.runtime} is not a WASM plugin`, { plugin })
      }
      try {
        const bytes = await readModuleFile(dir, manifest.entry.wasm, plugin)
        const extism = manifest.wasm?.extism
        const compiled = await cache.get(bytes, grant.limits.memory_mb, extism && 'extism')
        const memoryBytes = grant.limits.memory_mb * mib
        const instanceOptions: GuestWorkerOptions = {
          module: compiled.module,
          abi: compiled.abi,
          plugin,
          maxOutputBytes: grant.limits.max_output_bytes,
          maxHostCallBytes: grant.limits.max_host_call_bytes,
          memoryMb: grant.limits.memory_mb,
          wasi: compiled.usesWasi
            ? { preopens: resolvePreopens(dir, grant.permissions), maxOpenFiles: grant.limits.max_open_files }
            : undefined,
          // An Extism plugin's vars live here, shared by all its instances (extism/var-store.ts),
          // bounded as its manifest asks and never past the grant's memory_mb.
          hostApi:
            compiled.abi === 'extism'
              ? new ExtismVarStore({
                  maxBytes: Math.min(extism?.max_var_bytes ?? defaultMaxVarBytes, memoryBytes),
                }).routeHostCalls(hostApi)
              : hostApi,
          extism: {
            // Extism's max_pages bounds the kernel's memory; the grant's memory_mb bounds it too.
            maxKernelBytes: Math.min(
              (extism?.max_pages ?? Number.POSITIVE_INFINITY) * wasmPageBytes,
              memoryBytes,
            ),
            maxHttpResponseBytes: extism?.max_http_response_bytes ?? defaultMaxHttpResponseBytes,
          },
          spares,
          startTimeoutMs: grant.limits.init_timeout,
        }
        const first = await GuestWorker.start(instanceOptions)
        const { max_instances, wait_timeout } = manifest.wasm?.pool ?? defaultPool
        const { limits } = grant
        const pool = new WasmInstancePool({
          plugin,
          // The manifest asks; the administrator's max_instances caps it, so that the plugin's guest
          // memory is at most max_instances × memory_mb, both the administrator's.
          maxInstances: Math.min(max_instances, limits.max_instances),
          maxConcurrentCalls: limits.max_concurrent_calls,
          maxQueuedCalls: limits.max_queued_calls,
          waitTimeoutMs: wait_timeout,
          create: () => GuestWorker.start(instanceOptions),
        })
        pool.add(first)
        const wasmPlugin: WasmPlugin = new WasmPlugin({
          manifest,
          grant,
          compiled,
          pool,
          onShutdown: () => loaded.delete(wasmPlugin),
        })
        loaded.add(wasmPlugin)
        return wasmPlugin
      } catch (error) {
        throw loadFailure(plugin, error)
      }
    },

    async close(): Promise<void> {
      closed = true
      await Promise.all([...loaded].map((p) => p.shutdown()))
      loaded.clear()
      cache.clear()
      await spares.close()
    },
  }
}
