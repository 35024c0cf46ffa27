import type { PolicyStatus } from '@corral/types'
import type { PluginManager } from './manager-api.js'

/**
 * Policy statuses under which the host serves what a plugin adds (routes, widgets, templates):
 * until an administrator approves it, a plugin changes nothing anyone sees.
 */
export const servedStatuses: ReadonlySet<PolicyStatus> = new Set(['approved', 'restricted'])

/** Whether `plugin`'s additions are served now, by the policy in force. */
export function isServed(manager: PluginManager, plugin: string): boolean {
  const status = manager.get(plugin)?.policy?.status
  return status !== undefined && servedStatuses.has(status)
}
