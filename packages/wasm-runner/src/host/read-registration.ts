import type { HostCallHandler, ResourceLimits } from '@corral/types'
import { PluginError } from '@corral/types'
import { ModuleCache } from './module-cache.js'
import { moduleBytes } from './module-files.js'
import { SpareWorkers } from './spare-workers.js'
import { WorkerHandle } from './worker-handle.js'

/** Options of {@link readRegistration}. */
export interface ReadRegistrationOptions {
  /** What the module is called in messages (it has no name before its registration is read). */
  label: string
  /**
   * Bound the one instance: `memory_mb` caps its memory, `init_timeout` its instantiation and its
   * `corral_register`, `max_output_bytes` what it returns, `max_host_call_bytes` its host calls.
   */
  limits: Pick<ResourceLimits, 'memory_mb' | 'init_timeout' | 'max_output_bytes' | 'max_host_call_bytes'>
}

/** A module describing itself has no grant yet: every host call it makes is refused. */
const refuseHostCalls: HostCallHandler = async (method, _args, context) => {
  throw new PluginError('permission_denied', `${method}: no host call while the module describes itself`, {
    plugin: context.plugin,
  })
}

/**
 * Reads what a Corral ABI module says of itself without a manifest: instantiates it once in its own
 * worker thread, calls `corral_register`, stops the worker, and resolves with the JSON value it
 * returned (unchecked: the caller builds a manifest from it and checks it). The instance runs within
 * `limits`, with no WASI directory and no host call. Fails with `load_failed` for a module that is
 * not Corral ABI or exports no `corral_register`, and as a call does (`deadline_exceeded`,
 * `resource_exhausted`, `plugin_trap`) when `corral_register` misbehaves.
 *
 * @example
 * const value = await readRegistration(await readFile('plugins/echo.wasm'), { label: 'echo.wasm', limits })
 * // { name: 'echo', version: '1.0.0', routes: [...] }
 */
export async function readRegistration(
  bytes: Uint8Array,
  options: ReadRegistrationOptions,
): Promise<unknown> {
  const { label, limits } = options
  let compiled: Awaited<ReturnType<ModuleCache['get']>>
  try {
    compiled = await new ModuleCache(1).get(moduleBytes(bytes), limits.memory_mb)
  } catch (error) {
    throw PluginError.from(error, 'load_failed', label)
  }
  if (compiled.abi !== 'corral' || !compiled.lifecycle.has('corral_register')) {
    throw new PluginError(
      'load_failed',
      `${label} exports no corral_register, so it cannot describe itself: put it in a folder with a plugin.yaml`,
      { plugin: label },
    )
  }
  // No spare kept: this worker is the only one, and it stops as soon as the registration is read.
  const spares = new SpareWorkers()
  await spares.close()
  const instance = await WorkerHandle.start({
    module: compiled.module,
    abi: compiled.abi,
    plugin: label,
    maxOutputBytes: limits.max_output_bytes,
    maxHostCallBytes: limits.max_host_call_bytes,
    memoryMb: limits.memory_mb,
    wasi: compiled.usesWasi ? { preopens: [], maxOpenFiles: 0 } : undefined,
    hostApi: refuseHostCalls,
    extism: { maxKernelBytes: 0, maxHttpResponseBytes: 0 },
    spares,
    startTimeoutMs: limits.init_timeout,
  })
  try {
    return await instance.call('corral_register', '', {
      deadline: Date.now() + limits.init_timeout,
      context: { plugin: label },
    })
  } finally {
    await instance.terminate()
  }
}
