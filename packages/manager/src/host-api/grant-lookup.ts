import { effectiveGrant } from '@corral/manifest'
import type { EffectiveGrant, ResourcePolicy, ResourceRequest } from '@corral/types'
import type { PolicyStore } from '../policy-store/policy-store.js'
import type { GrantLookup } from './sandbox-dependencies.js'

/** Options of {@link createPolicyGrantLookup}. */
export interface PolicyGrantLookupOptions {
  policies: PolicyStore
  /**
   * What a plugin's manifest requests (`manifest.resources`), for host calls of a handler made
   * without its version's request; undefined for an unknown plugin, which gets nothing.
   */
  requestOf?: (plugin: string) => ResourceRequest | undefined
}

/**
 * The grant of a plugin as the policy store and its manifest make it now: `effectiveGrant(request,
 * policy)`, computed per call from the store's (briefly cached) policy, so a policy change applies
 * to the next host call.
 *
 * @example
 * const grants = createPolicyGrantLookup({ policies, requestOf: (name) => manifests.get(name)?.resources })
 */
export function createPolicyGrantLookup(options: PolicyGrantLookupOptions): GrantLookup {
  // While the store hands out the same policy object (its cache) for the same request, the grant
  // is the same: computed once, not on every host call.
  const computed = new WeakMap<ResourcePolicy, { request: ResourceRequest; grant: EffectiveGrant }>()
  const noRequest: ResourceRequest = { permissions: [] }
  return async (plugin, given) => {
    const request = given ?? options.requestOf?.(plugin) ?? noRequest
    const policy = await options.policies.get(plugin)
    const known = computed.get(policy)
    if (known !== undefined && known.request === request) return known.grant
    const grant = effectiveGrant(request, policy)
    computed.set(policy, { request, grant })
    return grant
  }
}
