import { availableParallelism } from 'node:os'
import type {
  EffectiveGrant,
  LoadOptions,
  Logger,
  Plugin,
  PluginErrorCode,
  RestartOptions,
  Runner,
  SupervisorClock,
} from '@corral/types'
import { defaultRestartOptions, PluginError, stderrLogger } from '@corral/types'
import type { ExtismHostFunctions } from '../abi/extism/current-plugin.js'
import { hostFunctionNames } from '../abi/extism/current-plugin.js'
import { defaultMaxHttpResponseBytes } from '../abi/extism/kernel.js'
import { defaultMaxVarBytes, ExtismVarStore } from '../abi/extism/var-store.js'
import { wasmPageBytes } from '../abi/wasm-binary.js'
import { PoolGroup } from './instance-pool.js'
import { ModuleCache } from './module-cache.js'
import { ModuleFiles } from './module-files.js'
import { resolvePreopens } from './preopens.js'
import { SpareWorkers } from './spare-workers.js'
import { WasmPlugin } from './wasm-plugin.js'
import type { InstanceSettings } from './worker-handle.js'

/** Options of {@link createWasmRunner}. */
export interface WasmRunnerOptions {
  /** How many compiled modules to keep, by content hash, and module files, by path. Default 64. */
  moduleCacheSize?: number
  /** When a plugin whose instance crashed starts again, and when it is quarantined. */
  restart?: Partial<RestartOptions>
  /** The supervision's clock and timers (tests pass a fake one). */
  clock?: SupervisorClock
  /** Where restarts and quarantines are logged. Default: JSON lines on stderr. */
  logger?: Logger
}

/**
 * What {@link WasmRunner.load} takes: the runner contract's options, and for an Extism plugin the
 * user host functions its module may import (Extism's `functions`), run on the host's thread.
 */
export interface WasmLoadOptions extends LoadOptions {
  extismFunctions?: ExtismHostFunctions
}

/**
 * Loads WASM plugins; see {@link createWasmRunner}. Its lifecycle verbs, one per level:
 * - `close()`: the runner releases everything it holds (it shuts down every plugin it loaded,
 *   then drops the module cache and the spare worker); it loads nothing after.
 * - `shutdown()`: one plugin's graceful stop under the contract: pending calls finish, the guest's
 *   `corral_shutdown` runs, all bounded by `shutdown_timeout`; then its workers are terminated.
 * - `terminate()`: one worker thread stopped by force, at once (a deadline, a trap, a
 *   cancellation, a quarantine, or the end of a shutdown).
 */
export interface WasmRunner extends Runner {
  readonly runtime: 'wasm'
  load(options: WasmLoadOptions): Promise<Plugin>
}

const mib = 1024 * 1024

/**
 * How many busy instances per core the runner's pools grow to together (each plugin's first
 * instance always starts). More than one: an instance waiting on a host call leaves its core to
 * another.
 */
const instancesPerCore = 4

function loadFailure(plugin: string, error: unknown): PluginError {
  const failure = PluginError.from(error, 'load_failed', plugin)
  const code: PluginErrorCode = failure.code === 'incompatible' ? 'incompatible' : 'load_failed'
  if (failure.code === code && failure.plugin === plugin) return failure
  return new PluginError(code, failure.rawMessage, { plugin, cause: failure })
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
  const files = new ModuleFiles(options.moduleCacheSize)
  const spares = new SpareWorkers()
  const group = new PoolGroup(instancesPerCore * availableParallelism())
  const loaded = new Set<Plugin>()
  const restart: RestartOptions = { ...defaultRestartOptions, ...options.restart }
  const logger = options.logger ?? stderrLogger
  let closed = false

  return {
    runtime: 'wasm',

    async load({ manifest, dir, grant, hostApi, extismFunctions }: WasmLoadOptions): Promise<Plugin> {
      const plugin = manifest.name
      if (closed) throw new PluginError('unavailable', 'the WASM runner is closed', { plugin })
      if (manifest.runtime !== 'wasm' || !('wasm' in manifest.entry)) {
        throw new PluginError('load_failed', `runtime ${manifest.runtime} is not a WASM plugin`, { plugin })
      }
      try {
        const source = await files.read(dir, manifest.entry.wasm, plugin)
        const extism = manifest.wasm?.extism
        const abi = extism && 'extism'
        const declared = extismFunctions === undefined ? undefined : hostFunctionNames(extismFunctions)
        const compiled = await cache.get(source, grant.limits.memory_mb, abi, declared)
        const maxKernelBytes = (memoryMb: number) =>
          // Extism's max_pages bounds the kernel's memory; the grant's memory_mb bounds it too.
          Math.min((extism?.max_pages ?? Number.POSITIVE_INFINITY) * wasmPageBytes, memoryMb * mib)
        // An Extism plugin's vars live here, shared by all its instances (extism/var-store.ts),
        // bounded as its manifest asks and never past the memory_mb it was loaded with. Kept for
        // the plugin's life, so that vars outlive instances and grant changes.
        const routedHostApi =
          compiled.abi === 'extism'
            ? new ExtismVarStore({
                maxBytes: Math.min(extism?.max_var_bytes ?? defaultMaxVarBytes, grant.limits.memory_mb * mib),
              }).routeHostCalls(
                hostApi,
                extismFunctions && {
                  functions: extismFunctions,
                  maxKernelBytes: maxKernelBytes(grant.limits.memory_mb),
                },
              )
            : hostApi
        const instanceSettings = async (current: EffectiveGrant): Promise<InstanceSettings> => {
          const { limits } = current
          // Guest memory is capped in the module itself: another cap is another compilation (cached).
          const module =
            limits.memory_mb === grant.limits.memory_mb
              ? compiled.module
              : (await cache.get(source, limits.memory_mb, abi, declared)).module
          return {
            module,
            abi: compiled.abi,
            plugin,
            maxOutputBytes: limits.max_output_bytes,
            maxHostCallBytes: limits.max_host_call_bytes,
            memoryMb: limits.memory_mb,
            wasi: compiled.usesWasi
              ? { preopens: resolvePreopens(dir, current.permissions), maxOpenFiles: limits.max_open_files }
              : undefined,
            hostApi: routedHostApi,
            extism: {
              maxKernelBytes: maxKernelBytes(limits.memory_mb),
              maxHttpResponseBytes: extism?.max_http_response_bytes ?? defaultMaxHttpResponseBytes,
              hostFunctions: compiled.hostFunctions ?? [],
            },
            spares,
            startTimeoutMs: limits.init_timeout,
          }
        }
        const wasmPlugin: WasmPlugin = await WasmPlugin.load({
          manifest,
          grant,
          compiled,
          instanceSettings,
          restart,
          clock: options.clock,
          logger,
          group,
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
      files.clear()
      await spares.close()
    },
  }
}
