import type { FieldError, PluginErrorCode, PluginErrorData } from '@corral/types'
import { isPluginError } from '@corral/types'
import type { WasiOptions } from '../worker/wasi.js'
import type { HostFunctionImport } from './extism/host-function-call.js'
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
   * unknown (an import named `module.name` in `hostFunctions` is a user host function the host
   * declared). Returns the names callable through `Plugin.call` and the optional lifecycle exports.
   */
  check(info: ModuleInfo, hostFunctions?: ReadonlySet<string>): CheckedModule
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
  /** The user host functions it imports, those the host declared (Extism only). */
  hostFunctions?: HostFunctionImport[]
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
  /** The Extism kernel's limits; only the Extism ABI reads them. */
  extism: ExtismLimits
}

/** What bounds an Extism plugin's kernel, from its manifest's `memory` and the grant. */
export interface ExtismLimits {
  /** The kernel's memory, in bytes: `max_pages` and `memory_mb`, whichever is smaller. */
  maxKernelBytes: number
  /** The largest HTTP response body `http_request` takes (`max_http_response_bytes`). */
  maxHttpResponseBytes: number
  /** The user host functions the module imports, which the host declared (`extism-drop-in`). */
  hostFunctions?: readonly HostFunctionImport[]
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
    /** The arguments that were wrong, for `invalid_argument`. */
    readonly fields?: FieldError[],
  ) {
    super(message)
  }

  toData(plugin: string): PluginErrorData & { discard: boolean } {
    const data = { code: this.code, message: this.message, plugin, discard: this.discard }
    return this.fields === undefined ? data : { ...data, fields: this.fields }
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

/** What {@link memoryCapFailure} knows of a guest's memory. */
export interface GuestMemoryCap {
  /** The guest's memory, once instantiated. */
  memory: WebAssembly.Memory | undefined
  /** Its size once the guest had started: memory that never grew past it never hit the cap. */
  startBytes: number
  /** The grant's `memory_mb`: the guest's memory cannot grow past it. */
  memoryMb: number
}

/**
 * A trap in a guest whose memory grew to more than half its cap: its runtime's `memory.grow` failed
 * and it gave up (AssemblyScript traps, or aborts, when it runs out), so this is `resource_exhausted`
 * naming the cap, not a bug in the plugin. Undefined for any other failure.
 *
 * The worker cannot see a `memory.grow` fail, only where memory stands when the trap comes. Half
 * the cap is the line because allocators grow by doubling (AssemblyScript asks for as much memory
 * again, then for what it needs): one that ran out below half its cap could still have doubled.
 * Memory that never grew past its start did not run out.
 */
export function memoryCapFailure(
  error: unknown,
  during: string,
  { memory, startBytes, memoryMb }: GuestMemoryCap,
): GuestCallError | undefined {
  const trapped =
    error instanceof WebAssembly.RuntimeError || (isPluginError(error) && error.code === 'plugin_trap')
  if (!trapped || memory === undefined) return undefined
  const size = memory.buffer.byteLength
  if (size <= startBytes || size * 2 <= memoryMb * mib) return undefined
  return new GuestCallError(
    'resource_exhausted',
    `${during} ran out of memory: the guest's memory (${(size / mib).toFixed(1)} MiB) could not grow within its cap of ${memoryMb} MiB (memory_mb)`,
    true,
  )
}

const mib = 1024 * 1024
