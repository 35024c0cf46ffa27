import type {
  EffectiveGrant,
  Permission,
  RateLimits,
  ResourceLimits,
  ResourcePolicy,
  ResourceRequest,
} from '@corral/types'
import { intersectScopes } from './scope-glob.js'

/** The limits of a plugin nobody has decided about yet: small, and ample for a well-behaved plugin. */
export const defaultLimits: Readonly<ResourceLimits> = Object.freeze({
  memory_mb: 128,
  call_timeout: 5_000,
  init_timeout: 10_000,
  shutdown_timeout: 5_000,
  max_output_bytes: 4 << 20,
  max_host_call_bytes: 2 << 20,
  max_instances: 4,
  max_open_files: 64,
  max_concurrent_calls: 64,
  max_queued_calls: 256,
})

export const defaultRateLimits: Readonly<RateLimits> = Object.freeze({
  calls_per_second: 100,
  db_queries_per_minute: 600,
  http_requests_per_minute: 60,
})

/**
 * The restrictive policy a plugin has until an administrator decides: status `pending_review`,
 * no grants (only `log` and `i18n.translate`, which every plugin has), default limits.
 */
export function defaultPolicy(plugin: string): ResourcePolicy {
  return {
    plugin,
    status: 'pending_review',
    grants: [],
    limits: { ...defaultLimits },
    rate_limits: { ...defaultRateLimits },
  }
}

/** One requested permission narrowed by one granted permission of the same type, or undefined. */
function intersectPermission(requested: Permission, granted: Permission): Permission | undefined {
  if (requested.type !== granted.type) return undefined
  const access = requested.access.filter((a) => granted.access.includes(a))
  if (requested.access.length > 0 && access.length === 0) return undefined
  const scope = intersectScopes(requested.scope, granted.scope)
  if (scope.length === 0) return undefined
  return { type: requested.type, access, scope }
}

/** Merges permissions of the same type and access into one, so each scope is listed once. */
function mergePermissions(permissions: Permission[]): Permission[] {
  const merged = new Map<string, Permission>()
  for (const perm of permissions) {
    const key = `${perm.type}|${[...perm.access].sort().join(',')}`
    const existing = merged.get(key)
    if (existing === undefined) merged.set(key, { ...perm, scope: [...perm.scope] })
    else existing.scope = [...new Set([...existing.scope, ...perm.scope])]
  }
  return [...merged.values()]
}

function smaller(requested: number | undefined, allowed: number): number {
  return requested === undefined ? allowed : Math.min(requested, allowed)
}

/**
 * What a plugin actually gets: its request intersected with its policy. A grant never exceeds the
 * request; scopes narrow; each limit is the smaller of request and policy. A `pending_review`
 * plugin gets the default policy whatever its stored grants say; a `blocked` one gets nothing.
 *
 * @example
 * // request db read+write on stats_*, policy grants db read on stats_*  →  db read on stats_*
 * effectiveGrant(manifest.resources, policy).permissions
 */
export function effectiveGrant(request: ResourceRequest, policy: ResourcePolicy): EffectiveGrant {
  const applied =
    policy.status === 'pending_review' ? { ...defaultPolicy(policy.plugin), status: policy.status } : policy
  const decided = policy.status !== 'pending_review' && policy.status !== 'blocked'
  const permissions =
    applied.status === 'blocked'
      ? []
      : mergePermissions(
          request.permissions.flatMap((r) =>
            applied.grants.map((g) => intersectPermission(r, g)).filter((p) => p !== undefined),
          ),
        )
  const limits = applied.limits
  return {
    plugin: policy.plugin,
    status: policy.status,
    permissions,
    limits: {
      memory_mb: smaller(request.memory_mb, limits.memory_mb),
      call_timeout: smaller(request.call_timeout, limits.call_timeout),
      init_timeout: smaller(request.init_timeout, limits.init_timeout),
      shutdown_timeout: smaller(request.shutdown_timeout, limits.shutdown_timeout),
      max_output_bytes: smaller(request.max_output_bytes, limits.max_output_bytes),
      // Set by the administrator alone: the manifest cannot ask for these.
      max_host_call_bytes: limits.max_host_call_bytes,
      max_instances: limits.max_instances,
      max_open_files: limits.max_open_files,
      max_concurrent_calls: limits.max_concurrent_calls,
      max_queued_calls: limits.max_queued_calls,
    },
    rate_limits: { ...applied.rate_limits },
    secret_config_keys: [...(policy.secret_config_keys ?? [])],
    // What weakens isolation is the administrator's to decide: nothing of it before a decision.
    env: decided ? [...(policy.env ?? [])] : [],
    unauthenticated_transport: decided && policy.unauthenticated_transport === true,
  }
}
