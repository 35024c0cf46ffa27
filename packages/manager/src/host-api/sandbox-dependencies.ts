import type { EffectiveGrant, Logger, ResourceRequest } from '@corral/types'
import type { CacheStore } from '../backends/cache-store.js'
import type { EventBus } from '../backends/event-bus.js'
import type { Mailer } from '../backends/mailer.js'
import type { SqlDatabase } from '../backends/sql-database.js'
import type { AuditLog } from '../policy-store/audit-log.js'
import type { RateLimiter } from '../rate-limit/rate-limiter.js'

/**
 * The grant of a plugin, looked up on every host call (grants change live): keep it cheap.
 * `request` is the calling version's own (its manifest's `resources`) when the host API knows it.
 */
export type GrantLookup = (
  plugin: string,
  request?: ResourceRequest,
) => EffectiveGrant | Promise<EffectiveGrant>

/** Options the host passes along with a `plugin.call` it makes for a plugin. */
export interface PluginCallOptions {
  /** The plugin that asked. */
  caller: string
  /** Plugin names from the outermost call to the caller, inclusive: the target's host calls carry it. */
  chain: string[]
  /** Epoch milliseconds: the outer call's deadline, which the inner call must not outlive. */
  deadline: number
  /** The token of the plugin call that caused this one. */
  token?: string
  signal: AbortSignal
}

/** Calls a function of another plugin: what `plugin.call` is made of (the manager provides it). */
export type PluginCaller = (
  plugin: string,
  fn: string,
  args: unknown,
  options: PluginCallOptions,
) => Promise<unknown>

/** Where `config.get` reads a plugin's configuration from (its defaults with the host's values laid over). */
export type ConfigSource = (
  plugin: string,
) => Record<string, unknown> | undefined | Promise<Record<string, unknown> | undefined>

/** What `i18n.translate` asks of the host. */
export interface TranslationRequest {
  plugin: string
  key: string
  args: readonly unknown[]
  language?: string
}

/** Translates a key; `undefined` when the host has no translation (the key is returned then). */
export type Translator = (request: TranslationRequest) => string | undefined | Promise<string | undefined>

/** Resolves a host name to the addresses a connection may use (the system resolver by default). */
export type HostResolver = (hostname: string) => Promise<{ address: string; family: 4 | 6 }[]>

/** Caps the host applies to every plugin, whatever its grant. */
export interface SandboxLimits {
  /** The deepest `plugin.call` chain, the first caller included. Default 8. */
  maxCallDepth: number
  /** The longest a host call may take when the causing call has no deadline. Default 30 000 ms. */
  defaultTimeoutMs: number
  /** The longest an `http.request` may take (the deadline applies too). Default 10 000 ms. */
  httpTimeoutMs: number
  /** The largest HTTP response body; the grant's `max_output_bytes` applies too. Default 5 MiB. */
  httpMaxResponseBytes: number
  /** Redirects followed, each checked like the first request. Default 5. */
  httpMaxRedirects: number
  /** `log` lines per second per plugin. Default 20. */
  logLinesPerSecond: number
  /** The largest cache value, decoded. Default 1 MiB. */
  cacheMaxValueBytes: number
  /** The most rows one `db.query` returns. Default 10 000. */
  dbMaxRows: number
  /** The largest `events.publish` data, as JSON. Default 64 KiB. */
  eventMaxBytes: number
}

/** What the sandboxed host API is built from; see `createSandboxedHostApi`. */
export interface SandboxDependencies {
  database: SqlDatabase
  cache: CacheStore
  rateLimiter: RateLimiter
  events: EventBus
  audit: AuditLog
  mailer: Mailer
  grants: GrantLookup
  callPlugin: PluginCaller | undefined
  config: ConfigSource
  translate: Translator
  logger: Logger
  resolve: HostResolver
  now: () => number
  limits: SandboxLimits
  /** The sender address of a plugin's emails. */
  emailFrom: (plugin: string) => string
}
