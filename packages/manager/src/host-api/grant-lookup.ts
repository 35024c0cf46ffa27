import { effectiveGrant } from '@corral/manifest'
import type { ResourceRequest } from '@corral/types'
import type { PolicyStore } from '../policy-store/policy-store.js'
import type { GrantLookup } from './sandbox-dependencies.js'

/** Options of {@link createPolicyGrantLookup}. */
export interface PolicyGrantLookupOptions {
  policies: PolicyStore
  /** What a plugin's manifest requests (`manifest.resources`); undefined for an unknown plugin, which gets nothing. */
  requestOf: (plugin: string) => ResourceRequest | undefined
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
  return async (plugin) =>
    effectiveGrant(options.requestOf(plugin) ?? { permissions: [] }, await options.policies.get(plugin))
}
