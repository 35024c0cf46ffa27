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
 * Plugins as administrators see them: one the manager holds no policy for (it failed before its
 * policy was read: a broken manifest, a name two folders declare) shows its stored policy, if any,
 * rather than none (which reads as `pending_review`).
 */
export async function withStoredPolicies(
  manager: PluginManager,
  plugins: PluginInfo[],
): Promise<PluginInfo[]> {
  if (plugins.every((p) => p.policy !== undefined)) return plugins
  const stored = new Map((await manager.policies.list()).map((policy) => [policy.plugin, policy]))
  return plugins.map((p) => {
    const policy = p.policy ?? stored.get(p.name)
    return policy === undefined ? p : { ...p, policy }
  })
}

/** A loaded plugin with its stored policy (see {@link withStoredPolicies}), or `not_found`. */
export async function pluginWithPolicy(manager: PluginManager, name: string): Promise<PluginInfo> {
  const [info] = await withStoredPolicies(manager, [pluginOrNotFound(manager, name)])
  return info as PluginInfo
}

/**
 * An administrator's decision on a plugin: its status, and for `approved` without grants what it
 * requests, for `restricted` the grants given. Limits and the rest of the policy stay as they are:
 * the policy the manager applies, else the stored one (a plugin that failed before its policy was
 * read has none in the manager, and its stored grants and limits must not be lost).
 */
export async function decide(
  manager: PluginManager,
  name: string,
  decision: { status: PolicyStatus; grants?: unknown },
  by: string,
): Promise<ResourcePolicy> {
  const info = pluginOrNotFound(manager, name)
  const { updated_at: _at, updated_by: _by, ...current } = info.policy ?? (await manager.policies.get(name))
  // Approving grants what the manifest requests; without a manifest read, the grants stay.
  const grants =
    decision.grants ??
    (decision.status === 'approved' && info.requested !== undefined ? info.requested.permissions : undefined)
  return manager.setPolicy(
    { ...current, plugin: name, status: decision.status, ...(grants === undefined ? {} : { grants }) },
    { by },
  )
}
