import { lookup } from 'node:dns/promises'
import { performance } from 'node:perf_hooks'
import { pluginNamePattern } from '@corral/manifest'
import type {
  EffectiveGrant,
  HostCallContext,
  HostCallHandler,
  HostMethod,
  Logger,
  ResourceRequest,
} from '@corral/types'
import { PluginError, stderrLogger } from '@corral/types'
import { z } from 'zod'
import type { Backends } from '../backends/create-backends.js'
import type { Mailer } from '../backends/mailer.js'
import { createOutboxMailer } from '../backends/outbox-mailer.js'
import { type AuditLog, createSqlAuditLog } from '../policy-store/audit-log.js'
import { HostCallMetrics, type HostCallMetricsSnapshot } from './call-metrics.js'
import { enforceRateLimit, type HostCallScope, type MethodHandler } from './method-handler.js'
import { cacheDelete, cacheGet, cacheSet } from './methods/cache.js'
import { configGet } from './methods/config.js'
import { dbExec, dbQuery } from './methods/db.js'
import { emailSend } from './methods/email.js'
import { eventsPublish } from './methods/events.js'
import { httpRequest } from './methods/http.js'
import { i18nTranslate } from './methods/i18n.js'
import { log } from './methods/log.js'
import { pluginCall } from './methods/plugin-call.js'
import type {
  ConfigSource,
  GrantLookup,
  HostResolver,
  PluginCaller,
  SandboxDependencies,
  SandboxLimits,
  Translator,
} from './sandbox-dependencies.js'

/** The dispatch table: one handler per host API method. */
const handlers: Record<HostMethod, MethodHandler> = {
  'db.query': dbQuery,
  'db.exec': dbExec,
  'cache.get': cacheGet,
  'cache.set': cacheSet,
  'cache.delete': cacheDelete,
  'http.request': httpRequest,
  'email.send': emailSend,
  log,
  'config.get': configGet,
  'i18n.translate': i18nTranslate,
  'plugin.call': pluginCall,
  'events.publish': eventsPublish,
}

/** What a runner's metered work runs once it passed the checks a host call passes: nothing more. */
const meteredWork: MethodHandler = { args: z.unknown(), run: async () => undefined }

/** Refusals the audit log keeps: the host said no, as opposed to a backend failing. */
const auditedCodes = new Set([
  'permission_denied',
  'rate_limited',
  'invalid_argument',
  'resource_exhausted',
  'deadline_exceeded',
])

/** The defaults of {@link SandboxLimits}. */
export const defaultSandboxLimits: Readonly<SandboxLimits> = Object.freeze({
  maxCallDepth: 8,
  defaultTimeoutMs: 30_000,
  httpTimeoutMs: 10_000,
  httpMaxResponseBytes: 5 << 20,
  httpMaxRedirects: 5,
  logLinesPerSecond: 20,
  cacheMaxValueBytes: 1 << 20,
  dbMaxRows: 10_000,
  eventMaxBytes: 64 << 10,
})

/** Options of {@link createSandboxedHostApi}. */
export interface SandboxedHostApiOptions {
  /** Where data, cache, rate-limit counters and events live (see `createBackends`). */
  backends: Pick<Backends, 'database' | 'cache' | 'rateLimiter' | 'events'>
  /** A plugin's effective grant, looked up on every call (see `createPolicyGrantLookup`). */
  grants: GrantLookup
  /** Where refusals are recorded. Default: table `corral_audit` of `backends.database`. */
  audit?: AuditLog
  /** How `email.send` delivers. Default: the outbox in `backends.database`. */
  mailer?: Mailer
  /** How `plugin.call` reaches another plugin; without it `plugin.call` is `unavailable`. */
  callPlugin?: PluginCaller
  /** A plugin's configuration, for `config.get`. Default: none (every key reads null). */
  config?: ConfigSource
  /** Translations for `i18n.translate`. Default: none (the key comes back). */
  translate?: Translator
  /** Where `log` lines go. Default: `stderrLogger` of `@corral/types` (JSON lines, warnings and errors). */
  logger?: Logger
  /** Host name resolution for `http.request`. Default: the system resolver (`dns.lookup`, all addresses). */
  resolve?: HostResolver
  /** Epoch milliseconds. Default `Date.now`. */
  now?: () => number
  limits?: Partial<SandboxLimits>
  /** The sender of a plugin's emails. Default `<plugin>@corral.localhost`. */
  emailFrom?: (plugin: string) => string
}

/**
 * What one loaded version of a plugin brings to its host calls. While a new version loads beside
 * the running one (a reload), each is checked against its own request and reads its own config.
 */
export interface CallerVersion {
  /** Its manifest's `resources`: the grant is `effectiveGrant(request, policy)`. */
  request: ResourceRequest
  /** Its configuration, as `config.get` answers it. */
  config: Record<string, unknown>
}

/** The per-plugin sandboxed host API: what the runners hand each plugin as its only way out. */
export interface SandboxedHostApi {
  /**
   * The handler for one plugin's host calls: the plugin identity is bound here, whatever
   * `context.plugin` says, so one plugin's runner cannot act as another; so is `version`, when
   * given (otherwise the request and config are looked up by name). Its `meter` counts work a
   * runner does for the plugin itself (an Extism plugin's vars) exactly as a host call.
   */
  forPlugin(plugin: string, version?: CallerVersion): HostCallHandler
  /** Per plugin, per method: calls, failures by code and time spent, since creation (this replica). */
  metrics(plugin?: string): HostCallMetricsSnapshot
  /** The audit log refusals are written to. */
  readonly audit: AuditLog
}

const systemResolver: HostResolver = async (hostname) =>
  (await lookup(hostname, { all: true, verbatim: true })).map((a) => ({
    address: a.address,
    family: a.family === 6 ? 6 : 4,
  }))

function invalidArguments(method: string, issues: { path: PropertyKey[]; message: string }[]): PluginError {
  const fields = issues.map((issue) => ({
    field: issue.path.length === 0 ? 'args' : issue.path.map(String).join('.'),
    message: issue.message,
  }))
  return new PluginError(
    'invalid_argument',
    `${method}: ${fields.map((f) => `${f.field}: ${f.message}`).join('; ')}`,
    { fields },
  )
}

/** The {@link HostCallScope} of one call: an instance of a class, as every call makes one. */
class CallScope implements HostCallScope {
  // Made only for the methods that wait on something abortable (HTTP, plugin.call): most host
  // calls never need it, and a signal per call is not free.
  #controller: AbortController | undefined
  /** Who decided the outcome first: the deadline, or a handler that committed within it. */
  #outcome: 'expired' | 'committed' | undefined

  constructor(
    readonly plugin: string,
    readonly version: CallerVersion | undefined,
    readonly grant: EffectiveGrant,
    readonly context: HostCallContext,
    readonly deadline: number,
    readonly deps: SandboxDependencies,
    readonly describe: (detail: string) => void,
  ) {}

  get request(): ResourceRequest | undefined {
    return this.version?.request
  }

  async config(): Promise<Record<string, unknown> | undefined> {
    return this.version === undefined ? this.deps.config(this.plugin) : this.version.config
  }

  get signal(): AbortSignal {
    this.#controller ??= new AbortController()
    return this.#controller.signal
  }

  commitBeforeDeadline(): boolean {
    this.#outcome ??= this.deps.now() <= this.deadline ? 'committed' : 'expired'
    return this.#outcome === 'committed'
  }

  /** A handler committed within the deadline: its result stands, however late. */
  get committed(): boolean {
    return this.#outcome === 'committed'
  }

  /** The deadline passed: `false` if a handler committed first, else aborts the signal with `error`. */
  expire(error: PluginError): boolean {
    if (this.#outcome === 'committed') return false
    this.#outcome = 'expired'
    this.#controller?.abort(error)
    return true
  }
}

/**
 * Creates the sandboxed host API. Every call is checked against the calling plugin's effective
 * grant (looked up per call) and rate limits, attributed to the plugin and the token of the call
 * that caused it, counted, audited when refused, and bounded by the causing call's deadline.
 *
 * @example
 * const backends = await createBackends()
 * const policies = createSqlPolicyStore(backends.database)
 * const hostApi = createSandboxedHostApi({
 *   backends,
 *   grants: createPolicyGrantLookup({ policies, requestOf: (name) => manifests.get(name)?.resources }),
 * })
 * const plugin = await wasm.load({ manifest, dir, grant, hostApi: hostApi.forPlugin(manifest.name) })
 */
export function createSandboxedHostApi(options: SandboxedHostApiOptions): SandboxedHostApi {
  const { backends } = options
  const now = options.now ?? Date.now
  const audit = options.audit ?? createSqlAuditLog(backends.database)
  const deps: SandboxDependencies = {
    database: backends.database,
    cache: backends.cache,
    rateLimiter: backends.rateLimiter,
    events: backends.events,
    audit,
    mailer: options.mailer ?? createOutboxMailer(backends.database, now),
    grants: options.grants,
    callPlugin: options.callPlugin,
    config: options.config ?? (() => undefined),
    translate: options.translate ?? (() => undefined),
    logger: options.logger ?? stderrLogger,
    resolve: options.resolve ?? systemResolver,
    now,
    limits: { ...defaultSandboxLimits, ...options.limits },
    emailFrom: options.emailFrom ?? ((plugin) => `${plugin}@corral.localhost`),
  }
  const metrics = new HostCallMetrics()
  // A plugin hammering past its rate limit is audited once per second and method, not once per call.
  const lastRateLimitAudit = new Map<string, number>()

  async function recordRefusal(
    plugin: string,
    method: string,
    error: PluginError,
    context: HostCallContext,
    detail: string | undefined,
  ): Promise<void> {
    const at = now()
    if (error.code === 'rate_limited') {
      const key = `${plugin}|${method}`
      if (at - (lastRateLimitAudit.get(key) ?? -Infinity) < 1000) return
      lastRateLimitAudit.set(key, at)
    }
    try {
      await audit.record({
        at,
        plugin,
        method,
        code: error.code,
        message: error.rawMessage,
        ...(context.token === undefined ? {} : { token: context.token }),
        ...(context.chain === undefined ? {} : { chain: context.chain }),
        ...(detail === undefined ? {} : { detail }),
      })
    } catch (auditError) {
      deps.logger.log('error', 'audit log write failed', { plugin, method, error: String(auditError) })
    }
  }

  async function dispatch(
    handler: MethodHandler,
    method: string,
    args: unknown,
    context: HostCallContext,
    version: CallerVersion | undefined,
    setDetail: (detail: string) => void,
  ): Promise<unknown> {
    const plugin = context.plugin
    const start = now()
    const capMs = method === 'http.request' ? deps.limits.httpTimeoutMs : deps.limits.defaultTimeoutMs
    const deadline = Math.min(context.deadline ?? Infinity, start + capMs)
    if (context.deadline !== undefined && context.deadline <= start) {
      throw new PluginError('deadline_exceeded', `${method}: the calling plugin call's deadline has passed`)
    }
    const grant = await deps.grants(plugin, version?.request)
    if (grant.status === 'blocked') throw new PluginError('permission_denied', `plugin ${plugin} is blocked`)

    const scope = new CallScope(plugin, version, grant, context, deadline, deps, setDetail)
    const callsLimited = enforceRateLimit(scope, 'calls')
    if (callsLimited !== undefined) await callsLimited
    const parsed = handler.args.safeParse(args)
    if (!parsed.success) throw invalidArguments(method, parsed.error.issues)
    if (handler.rateLimit !== undefined) {
      const limited = enforceRateLimit(scope, handler.rateLimit)
      if (limited !== undefined) await limited
    }

    let timer: NodeJS.Timeout | undefined
    try {
      // Whichever comes first: the handler's result, or the deadline (one promise, not a race of two).
      const result = await new Promise((resolve, reject) => {
        timer = setTimeout(
          () => {
            // A handler that committed in time is waited for: its changes are final, so is its result.
            const error = new PluginError('deadline_exceeded', `${method} did not finish before the deadline`)
            if (scope.expire(error)) reject(error)
          },
          Math.max(0, deadline - now()),
        )
        handler.run(parsed.data, scope).then(resolve, reject)
      })
      // Work that blocked the thread past the deadline could not be raced; its result is still too
      // late for the caller (unless it committed in time).
      if (!scope.committed && now() > deadline)
        throw new PluginError('deadline_exceeded', `${method} finished after the deadline`)
      return result
    } finally {
      clearTimeout(timer)
    }
  }

  /** One host call, or one piece of metered work, from checks to metrics and audit. */
  async function serve(
    plugin: string,
    version: CallerVersion | undefined,
    handler: MethodHandler | undefined,
    method: string,
    args: unknown,
    callContext: HostCallContext,
  ): Promise<unknown> {
    const context: HostCallContext = { ...callContext, plugin }
    const started = performance.now()
    const metricName = handler === undefined ? '(unknown)' : method
    let detail: string | undefined
    try {
      if (handler === undefined)
        throw new PluginError('unimplemented', `no host method "${String(method).slice(0, 64)}"`)
      const result = await dispatch(handler, method, args, context, version, (d) => {
        detail = d.slice(0, 500)
      })
      metrics.record(plugin, metricName, performance.now() - started)
      return result
    } catch (thrown) {
      const error = PluginError.from(thrown, 'internal', plugin)
      metrics.record(plugin, metricName, performance.now() - started, error.code)
      if (auditedCodes.has(error.code)) await recordRefusal(plugin, metricName, error, context, detail)
      throw error
    }
  }

  function forPlugin(plugin: string, version?: CallerVersion): HostCallHandler {
    // The name becomes a cache namespace and a rate-limit key: it must be a real plugin name.
    if (!pluginNamePattern.test(plugin))
      throw new PluginError('invalid_argument', `"${plugin}" is not a plugin name`)
    const handler: HostCallHandler = (method, args, callContext) =>
      serve(
        plugin,
        version,
        Object.hasOwn(handlers, method) ? handlers[method as HostMethod] : undefined,
        method,
        args,
        callContext,
      )
    // Work a runner does itself goes through the same checks, rate limit, metrics and audit as a
    // host call, with nothing to run: a plugin cannot dodge its limits by the road it takes.
    handler.meter = async (work, callContext) => {
      await serve(plugin, version, meteredWork, work, undefined, callContext)
    }
    return handler
  }

  return {
    forPlugin,
    metrics: (plugin) => metrics.snapshot(plugin),
    audit,
  }
}
