import type { PolicyStatus, ResourcePolicy } from '@corral/types'
import { PluginError } from '@corral/types'
import type { PluginInfo, PluginManager } from '../manager-api.js'

/** A loaded plugin, or `not_found`. */
export function pluginOrNotFound(manager: PluginManager, name: string): PluginInfo {
  const info = manager.get(name)
  if (info === undefined) throw new PluginError('not_found', `no plugin ${name} is loaded`)
  return info
}

/**
 * An administrator's decision on a plugin: its status, and for `approved` without grants what it
 * requests, for `restricted` the grants given. Limits and the rest of the policy stay as they are.
 */
export async function decide(
  manager: PluginManager,
  name: string,
  decision: { status: PolicyStatus; grants?: unknown },
  by: string,
): Promise<ResourcePolicy> {
  const info = pluginOrNotFound(manager, name)
  const { updated_at: _at, updated_by: _by, ...current } = info.policy ?? { plugin: name }
  const grants =
    decision.grants ?? (decision.status === 'approved' ? (info.requested?.permissions ?? []) : undefined)
  return manager.setPolicy(
    { ...current, plugin: name, status: decision.status, ...(grants === undefined ? {} : { grants }) },
    { by },
  )
}
