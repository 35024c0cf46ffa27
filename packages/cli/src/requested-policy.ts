import { defaultLimits } from '@corral/manifest'
import type { Manifest, Permission, ResourceLimits } from '@corral/types'

/** A policy as an administrator writes it (what `parsePolicy` reads): limits left out are the defaults. */
export interface PolicyInput {
  plugin: string
  status: 'approved'
  grants: Permission[]
  limits?: Partial<ResourceLimits>
}

/** The limits a manifest may ask for; a request above the default would be cut down to it. */
const requestableLimits = [
  'memory_mb',
  'call_timeout',
  'init_timeout',
  'shutdown_timeout',
  'max_output_bytes',
] as const

/**
 * The policy an administrator would write to grant a plugin exactly what its manifest requests:
 * approved, every requested permission, and each limit it asks for above the default.
 *
 * @example
 * parsePolicy(requestedPolicy(manifest))   // what `corral call` loads a plugin under by default
 */
export function requestedPolicy(manifest: Manifest): PolicyInput {
  const request = manifest.resources
  const limits: Partial<ResourceLimits> = {}
  for (const key of requestableLimits) {
    const asked = request[key]
    if (asked !== undefined && asked > defaultLimits[key]) limits[key] = asked
  }
  return {
    plugin: manifest.name,
    status: 'approved',
    grants: request.permissions.map((p) => ({ type: p.type, access: [...p.access], scope: [...p.scope] })),
    ...(Object.keys(limits).length > 0 ? { limits } : {}),
  }
}
