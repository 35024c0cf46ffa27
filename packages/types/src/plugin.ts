import type { HostCallHandler } from './host-api.js'
import type { Manifest, PluginRuntime } from './manifest.js'
import type { PluginErrorData } from './plugin-error.js'
import type { EffectiveGrant } from './policy.js'
import type { Registration } from './registration.js'

/**
 * The part of an `AbortSignal` Corral relies on. Declared here so that `@corral/types` needs neither
 * the DOM nor Node's type definitions; a real `AbortSignal` satisfies it.
 */
export interface AbortSignalLike {
  readonly aborted: boolean
  readonly reason?: unknown
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void
  removeEventListener(type: 'abort', listener: () => void): void
}

/** Options of one {@link Plugin.call}. */
export interface CallOptions {
  /**
   * Fails the call with `deadline_exceeded` after this long. Defaults to the grant's `call_timeout`,
   * which is also a ceiling: a caller may shorten a call, never lengthen it.
   */
  timeoutMs?: number
  /** Aborting fails the call with `canceled` and stops the work. */
  signal?: AbortSignalLike
  /** Identifies the call for attribution; passed to every host call it makes. */
  token?: string
  /** The `plugin.call` chain that led to this call, outermost first. */
  chain?: string[]
}

/** Readiness, as `health()` reports it. */
export interface HealthStatus {
  ready: boolean
  message?: string
  /** The last failure, if any. */
  last_error?: PluginErrorData
}

/**
 * The lifecycle states the manager moves a plugin through:
 * discovered → loading → running ⇄ degraded → stopping → stopped; or `failed` (load or init failed),
 * `quarantined` (restarted too often; an administrator resets it), `blocked` (its policy blocks it).
 */
export type PluginState =
  | 'discovered'
  | 'loading'
  | 'running'
  | 'degraded'
  | 'stopping'
  | 'stopped'
  | 'failed'
  | 'quarantined'
  | 'blocked'

/**
 * Where a loaded plugin stands as its runner's supervision sees it: `restarting` after a crash (a
 * process that exited, a WASM instance that trapped or was stopped), with backoff; `quarantined`
 * after too many restarts in a window, until {@link Plugin.reset}.
 */
export type RuntimeState = 'running' | 'restarting' | 'quarantined' | 'stopping' | 'stopped'

/** One change of a plugin's {@link RuntimeState}. */
export interface RuntimeStateChange {
  from: RuntimeState
  to: RuntimeState
  /** Why, in words: `the process exited with code 3`, `4 restarts within 60000 ms`. */
  reason: string
  /** Epoch milliseconds. */
  at: number
}

/**
 * One loaded plugin, whatever runs it. Every method rejects with a {@link PluginError} only.
 *
 * @example
 * const reg = await plugin.register()
 * await plugin.init({ greeting: 'hi' })
 * const out = await plugin.call('summarize', { day: '2026-11-21' }, { timeoutMs: 500 })
 * await plugin.shutdown()
 */
export interface Plugin {
  readonly name: string
  readonly runtime: PluginRuntime
  /** What the plugin provides. Called once, right after load. */
  register(): Promise<Registration>
  /** Hands the plugin its config; it serves calls only after this. */
  init(config: Record<string, unknown>): Promise<void>
  /** Calls plugin function `fn` with JSON arguments; resolves with its JSON result. */
  call(fn: string, args?: unknown, options?: CallOptions): Promise<unknown>
  /**
   * Calls plugin function `fn` with `input` exactly as given and resolves with its output exactly
   * as the plugin wrote it: no JSON on either side (binary data, exact formatting, large integers).
   * An Extism plugin's native call; a function written against JSON gets `input` as its JSON text.
   */
  callBytes(fn: string, input: Uint8Array, options?: CallOptions): Promise<Uint8Array>
  health(): Promise<HealthStatus>
  /** Where the plugin's supervision stands now. */
  readonly state: RuntimeState
  /** Calls `listener` on every change of {@link Plugin.state}; returns the function that stops it. */
  onStateChange(listener: (change: RuntimeStateChange) => void): () => void
  /** Lifts a quarantine: forgets the restart history and starts the plugin again. */
  reset(): Promise<void>
  /**
   * Applies a changed grant live: limits (timeouts, output size, memory, instances, concurrency)
   * hold from the next call on. Calls already running keep the limits they started with.
   */
  updateGrant(grant: EffectiveGrant): void
  /** Finishes pending work and releases everything; bounded by the grant's `shutdown_timeout`. */
  shutdown(): Promise<void>
}

/** What a runner needs to load one plugin. */
export interface LoadOptions {
  manifest: Manifest
  /** The plugin's folder; the manifest's paths are relative to it. */
  dir: string
  grant: EffectiveGrant
  /** Where the plugin's host calls go. */
  hostApi: HostCallHandler
}

/** Loads plugins of one runtime. */
export interface Runner {
  readonly runtime: PluginRuntime
  load(options: LoadOptions): Promise<Plugin>
  /** Shuts down every plugin this runner loaded and releases shared resources. */
  close(): Promise<void>
}
