import type { PluginErrorCode, PluginErrorData } from '@corral/types'
import type { WasiOptions } from './wasi.js'
import type { ModuleInfo } from './wasm-binary.js'

/**
 * The seam between the runner and an ABI. The runner (pool, channel, timeouts, limits) knows
 * nothing of how a guest is called; an ABI adapter knows nothing of workers. Corral ABI v1 is one
 * adapter (`corral-abi.ts` on the host, `corral-guest.ts` in the worker); the Extism kernel is
 * another, beside it.
 */
export type AbiName = 'corral' | 'extism'

/**
 * The host-side half of an ABI: recognises and checks a module before it is compiled.
 */
export interface AbiCheck {
  readonly name: AbiName
  /** Whether the module is written against this ABI (by its imports and exports). */
  recognizes(info: ModuleInfo): boolean
  /**
   * Checks the module's imports and exports; throws `load_failed` naming what is missing or
   * unknown. Returns the names callable through `Plugin.call` and the optional lifecycle exports.
   */
  check(info: ModuleInfo): CheckedModule
}

/** What the host knows of a checked module. */
export interface CheckedModule {
  abi: AbiName
  /** Export names `Plugin.call` may call. */
  callable: ReadonlySet<string>
  /** Lifecycle functions the module implements (`corral_register`, `corral_init`, …). */
  lifecycle: ReadonlySet<LifecycleFunction>
  /** Whether it imports `wasi_snapshot_preview1`. */
  usesWasi: boolean
}

/** The lifecycle functions, as the host calls them through the channel. */
export type LifecycleFunction = 'corral_register' | 'corral_init' | 'corral_health' | 'corral_shutdown'

export const lifecycleFunctions: readonly LifecycleFunction[] = [
  'corral_register',
  'corral_init',
  'corral_health',
  'corral_shutdown',
]

/**
 * How a guest reaches the host from inside the worker. Every method blocks the worker thread until
 * the host answers: that is what makes `host_call` synchronous for the guest.
 */
export interface HostBridge {
  /** Calls a host API method with JSON args; returns the `{"ok": …}` or `{"error": …}` JSON bytes. */
  hostCall(method: string, args: Uint8Array): Uint8Array
  /** Logs through the host API's `log` method (level 0 trace … 4 error). */
  log(level: number, message: string): void
}

/** What the worker gives an ABI adapter to instantiate one guest. */
export interface GuestOptions {
  module: WebAssembly.Module
  plugin: string
  bridge: HostBridge
  /** The largest output one call may return. */
  maxOutputBytes: number
  /** The grant's memory limit in MiB; an ABI that keeps memory beside the guest's caps it too. */
  memoryMb: number
  /** Set when the module imports WASI. */
  wasi: WasiOptions | undefined
}

/**
 * One instantiated guest, driven by the worker: one call at a time.
 * Lifecycle functions arrive as calls of their names (`corral_init` with `{"config": …}`), so an
 * ABI without them maps them as it sees fit.
 */
export interface GuestInstance {
  /**
   * Runs `fn` with `input`; returns the output, which may be a view of guest memory valid until
   * the guest is next entered. Throws a {@link GuestCallError}.
   */
  call(fn: string, input: Uint8Array): Uint8Array
}

/** Instantiates a guest of one ABI (inside the worker). Throws a {@link GuestCallError}. */
export type GuestFactory = (options: GuestOptions) => Promise<GuestInstance>

/**
 * A failed guest call, as the worker reports it: the error, and whether the instance must be
 * discarded (after a trap, or when a limit was hit mid-call, its state is suspect).
 */
export class GuestCallError extends Error {
  override readonly name = 'GuestCallError'
  constructor(
    readonly code: PluginErrorCode,
    message: string,
    readonly discard: boolean,
  ) {
    super(message)
  }

  toData(plugin: string): PluginErrorData & { discard: boolean } {
    return { code: this.code, message: this.message, plugin, discard: this.discard }
  }
}

/**
 * Turns whatever a guest export threw into a {@link GuestCallError}: a WebAssembly trap or a stack
 * overflow is `plugin_trap`; anything else escaping an import is a host bug (`internal`). Both
 * discard the instance.
 */
export function guestFailure(error: unknown, during: string): GuestCallError {
  if (error instanceof GuestCallError) return error
  if (error instanceof WebAssembly.RuntimeError) {
    return new GuestCallError('plugin_trap', `trap in ${during}: ${error.message}`, true)
  }
  if (error instanceof RangeError && /call stack/i.test(error.message)) {
    return new GuestCallError('plugin_trap', `trap in ${during}: stack overflow`, true)
  }
  const message = error instanceof Error ? error.message : String(error)
  return new GuestCallError('internal', `${during} failed: ${message}`, true)
}
