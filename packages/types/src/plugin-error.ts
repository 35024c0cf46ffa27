/**
 * The codes Corral itself gives to a failure. A plugin's own error codes travel as
 * `<plugin>:<code>` (see {@link PluginErrorCode}).
 */
export type CorralErrorCode =
  /** A `plugin.yaml` (or an Extism manifest) failed validation; `fields` lists every problem. */
  | 'manifest_invalid'
  /** A plugin's config failed its manifest's JSON Schema; `fields` holds JSON-pointer paths. */
  | 'config_invalid'
  /** A plugin could not be loaded: bad module, missing export, unknown import, failed start. */
  | 'load_failed'
  /** The plugin needs a host version (or ABI, or protocol version) this host is not. */
  | 'incompatible'
  | 'not_found'
  | 'already_exists'
  /** The arguments of a call or host call are malformed. */
  | 'invalid_argument'
  /** The plugin's effective grant does not allow this. */
  | 'permission_denied'
  /** A rate limit was hit; `retryAfterMs` says when to try again. */
  | 'rate_limited'
  /** A limit other than time was hit: memory, output size, pool wait, var store. */
  | 'resource_exhausted'
  | 'deadline_exceeded'
  /** The plugin (or a backend) is not there to serve: crashed, stopping, quarantined. */
  | 'unavailable'
  | 'canceled'
  /** The plugin does not offer the function or host method asked for. */
  | 'unimplemented'
  /** A WASM trap or out-of-bounds result: the instance was discarded. */
  | 'plugin_trap'
  /** The plugin reported an error without a code of its own. */
  | 'plugin_error'
  /** A bug on the host side. */
  | 'internal'

/** A code a plugin defined itself, prefixed by the host with the plugin's name. */
export type PluginDefinedErrorCode = `${string}:${string}`

/** Every code a {@link PluginError} can carry. */
export type PluginErrorCode = CorralErrorCode | PluginDefinedErrorCode

/** Every Corral code, in one list: what {@link isPluginErrorCode} checks against. */
export const corralErrorCodes: readonly CorralErrorCode[] = [
  'manifest_invalid',
  'config_invalid',
  'load_failed',
  'incompatible',
  'not_found',
  'already_exists',
  'invalid_argument',
  'permission_denied',
  'rate_limited',
  'resource_exhausted',
  'deadline_exceeded',
  'unavailable',
  'canceled',
  'unimplemented',
  'plugin_trap',
  'plugin_error',
  'internal',
]

const corralCodeSet: ReadonlySet<string> = new Set(corralErrorCodes)
const pluginDefinedCode = /^[a-z][a-z0-9-]{1,62}:[A-Za-z0-9_.-]{1,128}$/

/** Whether `value` is a code a {@link PluginError} may carry. */
export function isPluginErrorCode(value: unknown): value is PluginErrorCode {
  return typeof value === 'string' && (corralCodeSet.has(value) || pluginDefinedCode.test(value))
}

/** One problem with one field of a manifest, a config or a policy. */
export interface FieldError {
  /** Dotted path for manifests (`resources.permissions[0].scope`), JSON pointer for config (`/smtp/port`). */
  field: string
  message: string
  /** 1-based line in the source file, where the source is text. */
  line?: number
  /** 1-based column in the source file, where the source is text. */
  column?: number
}

/** `resources.permissions[0].scope`: how a field path is written in every Corral error. */
export function formatFieldPath(path: readonly (string | number)[]): string {
  let out = ''
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`
    else out += out === '' ? key : `.${key}`
  }
  return out
}

/** The plain-object form of a {@link PluginError}: what crosses a worker, a process or an HTTP response. */
export interface PluginErrorData {
  code: PluginErrorCode
  message: string
  plugin?: string
  fields?: FieldError[]
  retryAfterMs?: number
  cause?: PluginErrorData | { name: string; message: string }
}

/** Optional details of a {@link PluginError}. */
export interface PluginErrorOptions {
  /** The plugin the failure belongs to. */
  plugin?: string
  /** Every problem found, for `manifest_invalid`, `config_invalid` and `invalid_argument`. */
  fields?: FieldError[]
  /** For `rate_limited`: how long until a retry can succeed. */
  retryAfterMs?: number
  cause?: unknown
}

const errorName = 'PluginError'

/**
 * The one error class of Corral. Every failure a host sees — a bad manifest, a refused host call,
 * a trapped WASM instance, a crashed plugin process — is a `PluginError` with a {@link PluginErrorCode}.
 *
 * It survives a trip across a worker or a process through {@link PluginError.toData} and
 * {@link PluginError.fromData}; use {@link isPluginError} rather than `instanceof` where an error may
 * come from another realm.
 *
 * @example
 * throw new PluginError('permission_denied', 'table users is not in the db grant', { plugin: 'stats' })
 */
export class PluginError extends Error {
  override readonly name = errorName
  readonly code: PluginErrorCode
  /** The message without the `[code]` prefix. */
  readonly rawMessage: string
  readonly plugin: string | undefined
  readonly fields: readonly FieldError[]
  readonly retryAfterMs: number | undefined

  constructor(code: PluginErrorCode, message: string, options: PluginErrorOptions = {}) {
    super(
      formatMessage(code, message, options.plugin),
      options.cause === undefined ? {} : { cause: options.cause },
    )
    this.code = code
    this.rawMessage = message
    this.plugin = options.plugin
    this.fields = options.fields ?? []
    this.retryAfterMs = options.retryAfterMs
  }

  /**
   * Turns anything thrown into a `PluginError`: a `PluginError` (or its plain form) is kept as it is,
   * anything else is wrapped with `code` and kept as `cause`.
   */
  static from(reason: unknown, code: PluginErrorCode = 'internal', plugin?: string): PluginError {
    if (reason instanceof PluginError) return reason
    if (isPluginErrorData(reason)) return PluginError.fromData(reason)
    if (reason instanceof Error) {
      return new PluginError(code, reason.message, {
        cause: reason,
        ...(plugin === undefined ? {} : { plugin }),
      })
    }
    return new PluginError(code, String(reason), plugin === undefined ? {} : { plugin })
  }

  /** Rebuilds an error from its plain form, as sent by {@link PluginError.toData}. */
  static fromData(data: PluginErrorData): PluginError {
    const options: PluginErrorOptions = {}
    if (data.plugin !== undefined) options.plugin = data.plugin
    if (data.fields !== undefined) options.fields = data.fields
    if (data.retryAfterMs !== undefined) options.retryAfterMs = data.retryAfterMs
    if (data.cause !== undefined) {
      options.cause = isPluginErrorData(data.cause) ? PluginError.fromData(data.cause) : data.cause
    }
    return new PluginError(data.code, data.message, options)
  }

  /** The plain-object form: JSON-safe and structured-clone-safe. */
  toData(): PluginErrorData {
    const data: PluginErrorData = { code: this.code, message: this.rawMessage }
    if (this.plugin !== undefined) data.plugin = this.plugin
    if (this.fields.length > 0) data.fields = this.fields.map((f) => ({ ...f }))
    if (this.retryAfterMs !== undefined) data.retryAfterMs = this.retryAfterMs
    if (this.cause instanceof PluginError) data.cause = this.cause.toData()
    else if (this.cause instanceof Error) data.cause = { name: this.cause.name, message: this.cause.message }
    return data
  }

  toJSON(): PluginErrorData {
    return this.toData()
  }
}

function formatMessage(code: PluginErrorCode, message: string, plugin: string | undefined): string {
  return plugin === undefined ? `[${code}] ${message}` : `[${code}] ${plugin}: ${message}`
}

/**
 * Whether `value` is a {@link PluginError}, also one made in another realm (a worker, a VM context):
 * it checks the name and the code, not only the prototype chain.
 */
export function isPluginError(value: unknown): value is PluginError {
  if (value instanceof PluginError) return true
  return (
    value instanceof Error &&
    value.name === errorName &&
    isPluginErrorCode((value as { code?: unknown }).code) &&
    typeof (value as { rawMessage?: unknown }).rawMessage === 'string'
  )
}

/** Whether `value` is the plain form of a {@link PluginError}. */
export function isPluginErrorData(value: unknown): value is PluginErrorData {
  if (typeof value !== 'object' || value === null || value instanceof Error) return false
  const { code, message } = value as { code?: unknown; message?: unknown }
  return isPluginErrorCode(code) && typeof message === 'string'
}
