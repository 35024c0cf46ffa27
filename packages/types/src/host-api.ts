/** A log level, as `log` takes it and as the WASM `log` import numbers it (0 trace … 4 error). */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error'

/** Every log level, lowest first: its index is its number in the WASM ABI. */
export const logLevels: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error']

/**
 * Where Corral writes logs: a plugin's `log` lines (attributed by the host API), its stderr and
 * stdio (gRPC plugins), and the runners' own notes. Any structured logger fits in one line.
 */
export interface Logger {
  log(level: LogLevel, message: string, fields?: Record<string, unknown>): void
}

/**
 * The host API: every method a plugin may call on the host, with its arguments and result.
 * One dispatch table serves both runtimes (WASM `host_call`, gRPC `HostService.Call`).
 * Binary values travel as base64 strings.
 */
export interface HostApiMethods {
  /** Needs `db` read on every table the SQL reads. Bound parameters only. */
  'db.query': { args: { sql: string; args?: unknown[] }; result: { rows: Record<string, unknown>[] } }
  /** Needs `db` write on every table the SQL writes (and read on every table it reads). */
  'db.exec': { args: { sql: string; args?: unknown[] }; result: { rows_affected: number } }
  /** Needs `cache` read. Keys live in the plugin's own namespace. */
  'cache.get': { args: { key: string }; result: { value: string | null } }
  /** Needs `cache` write. `value` is base64. */
  'cache.set': { args: { key: string; value: string; ttl_seconds?: number }; result: Record<string, never> }
  /** Needs `cache` write. */
  'cache.delete': { args: { key: string }; result: { deleted: boolean } }
  /** Needs `http` on the URL's host; the resolved address is checked too. `body` is base64 both ways. */
  'http.request': {
    args: { method: string; url: string; headers?: Record<string, string>; body?: string }
    result: { status: number; headers: Record<string, string>; body: string }
  }
  /** Needs `email` on every recipient's domain. `html` is an optional HTML alternative of `body`. */
  'email.send': {
    args: { to: string[]; subject: string; body: string; html?: string }
    result: { message_id: string }
  }
  /** Always allowed; rate-capped. */
  log: {
    args: { level: LogLevel; message: string; fields?: Record<string, unknown> }
    result: Record<string, never>
  }
  /** Needs `config` on the key; secret keys are never returned. */
  'config.get': { args: { key: string }; result: { value: unknown } }
  /** Always allowed. */
  'i18n.translate': { args: { key: string; args?: unknown[]; language?: string }; result: { text: string } }
  /** Needs `plugin_call` on the target plugin. Call depth is bounded; cycles are refused. */
  'plugin.call': { args: { plugin: string; fn: string; args?: unknown }; result: unknown }
  /** Needs `events` on the event type. */
  'events.publish': { args: { type: string; data?: unknown }; result: Record<string, never> }
}

/** The name of a host API method. */
export type HostMethod = keyof HostApiMethods

/** The arguments of host API method `M`. */
export type HostMethodArgs<M extends HostMethod> = HostApiMethods[M]['args']

/** The result of host API method `M`. */
export type HostMethodResult<M extends HostMethod> = HostApiMethods[M]['result']

/** Every host API method, in one list. */
export const hostMethods: readonly HostMethod[] = [
  'db.query',
  'db.exec',
  'cache.get',
  'cache.set',
  'cache.delete',
  'http.request',
  'email.send',
  'log',
  'config.get',
  'i18n.translate',
  'plugin.call',
  'events.publish',
]

/** A typed host API, as a plugin (or a test) sees it. */
export interface HostApi {
  call<M extends HostMethod>(method: M, args: HostMethodArgs<M>): Promise<HostMethodResult<M>>
}

/**
 * Who is asking, and on behalf of which call: the runners pass this with every host call so the
 * host can check permissions, attribute, and propagate deadlines.
 */
export interface HostCallContext {
  /** The calling plugin's name. */
  plugin: string
  /** Identifies the plugin call that caused this host call (for attribution and audit). */
  token?: string
  /** Epoch milliseconds after which the causing call has failed; the host call must not outlive it. */
  deadline?: number
  /** Plugin names of the `plugin.call` chain that led here, outermost first (cycle and depth checks). */
  chain?: string[]
}

/**
 * How a runner reaches the host: one function for every method. It resolves with the method's
 * result or rejects with a {@link PluginError}.
 */
export interface HostCallHandler {
  (method: string, args: unknown, context: HostCallContext): Promise<unknown>
  /**
   * Counts work a runner does for the plugin without a host method (an Extism plugin's vars, which
   * the WASM runner keeps) against the plugin's rate limits, as one host call. The sandboxed host
   * API's handlers have it; a handler without it counts nothing.
   */
  meter?: HostWorkMeter
}

/**
 * Counts one piece of host work named `work` for the plugin of `context`, as a host call is
 * counted; rejects as a host call would (`rate_limited`, or `permission_denied` for a blocked
 * plugin) when the work must not be done.
 */
export type HostWorkMeter = (work: string, context: HostCallContext) => Promise<void>
