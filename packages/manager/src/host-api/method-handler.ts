import { matchAnyScope } from '@corral/manifest'
import type { Access, EffectiveGrant, HostCallContext, PermissionType, ResourceRequest } from '@corral/types'
import { PluginError } from '@corral/types'
import type { z } from 'zod'
import type { RateDecision } from '../rate-limit/rate-limiter.js'
import type { SandboxDependencies } from './sandbox-dependencies.js'

/** One host call in flight: who asks, under which grant, until when. */
export interface HostCallScope {
  plugin: string
  grant: EffectiveGrant
  /** What the calling version's manifest requests (`resources`), when the call names its version. */
  request: ResourceRequest | undefined
  context: HostCallContext
  /** Epoch milliseconds by which the call must be over (the causing call's deadline, capped by the host). */
  deadline: number
  /** The calling version's configuration (see `CallerVersion`), or the host's for the plugin. */
  config(): Promise<Record<string, unknown> | undefined>
  /** Aborted when the deadline passes: handlers pass it to whatever they wait on. */
  signal: AbortSignal
  /**
   * For a handler about to make its effects final (commit a write): `true` while the call is
   * within its deadline, and from then on the deadline no longer fails it (its result is returned);
   * `false` once the caller is answered `deadline_exceeded`, and the effects must be dropped.
   */
  commitBeforeDeadline(): boolean
  deps: SandboxDependencies
  /** Sets the short description of what was asked that an audit entry keeps (never a secret). */
  describe(detail: string): void
}

/** One host API method: how its arguments look and what it does with them. */
export interface MethodHandler<S extends z.ZodType = z.ZodType> {
  args: S
  /** Which rate limit, besides calls per second, this method counts against. */
  rateLimit?: 'db' | 'http' | 'log'
  run(args: z.output<S>, scope: HostCallScope): Promise<unknown>
}

/** Declares a {@link MethodHandler} with its argument type inferred from the schema. */
export function defineMethod<S extends z.ZodType>(handler: MethodHandler<S>): MethodHandler<S> {
  return handler
}

/**
 * Whether the grant has a permission of `type` (with `access`, for db and cache) whose scope
 * matches `value`.
 */
export function isGranted(
  grant: EffectiveGrant,
  type: PermissionType,
  value: string,
  access?: Access,
): boolean {
  return grant.permissions.some(
    (p) =>
      p.type === type && (access === undefined || p.access.includes(access)) && matchAnyScope(p.scope, value),
  )
}

/** Throws `permission_denied` unless {@link isGranted}. */
export function requireGrant(
  scope: HostCallScope,
  type: PermissionType,
  value: string,
  access?: Access,
): void {
  if (!isGranted(scope.grant, type, value, access)) {
    const what = access === undefined ? type : `${type} ${access}`
    throw new PluginError('permission_denied', `${what} on "${value}" is not granted`, {
      plugin: scope.plugin,
    })
  }
}

/** The rate limits of a plugin: per second for calls and log lines, per minute for DB queries and HTTP requests. */
export type RateLimitKind = 'calls' | 'db' | 'http' | 'log'

/**
 * Counts one hit against a plugin's rate limit; throws `rate_limited` with `retryAfterMs` when over.
 * With a limiter that answers at once (in process), so does this (`undefined`): no promise per hit.
 */
export function enforceRateLimit(scope: HostCallScope, kind: RateLimitKind): Promise<void> | undefined {
  const rates = scope.grant.rate_limits
  const [limit, windowMs, what] =
    kind === 'calls'
      ? [rates.calls_per_second, 1000, 'host calls per second']
      : kind === 'db'
        ? [rates.db_queries_per_minute, 60_000, 'DB queries per minute']
        : kind === 'http'
          ? [rates.http_requests_per_minute, 60_000, 'HTTP requests per minute']
          : [scope.deps.limits.logLinesPerSecond, 1000, 'log lines per second']
  const decision = scope.deps.rateLimiter.hit(`${scope.plugin}:${kind}`, limit, windowMs)
  if (decision instanceof Promise) return decision.then((d) => refuseOverLimit(d, scope, limit, what))
  refuseOverLimit(decision, scope, limit, what)
  return undefined
}

function refuseOverLimit(decision: RateDecision, scope: HostCallScope, limit: number, what: string): void {
  if (decision.allowed) return
  throw new PluginError('rate_limited', `more than ${limit} ${what}`, {
    plugin: scope.plugin,
    retryAfterMs: decision.retryAfterMs,
  })
}
