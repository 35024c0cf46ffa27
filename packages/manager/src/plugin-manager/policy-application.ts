import type { PluginState, PolicyStatus } from '@corral/types'

/**
 * What a changed policy does to a plugin:
 * - `stop`: it is blocked now: stop it if it runs, refuse its calls (`blocked`);
 * - `load`: it was blocked and is not any more, or it had failed (an init refused under the
 *   restrictive grant of a plugin pending review, say) and the new policy does not block it: load it
 *   under the new policy, as an administrator approving it expects;
 * - `reload`: an administrator decided on a pending plugin: load it again beside the running one,
 *   so that it is initialised knowing its new grant;
 * - `update`: hand the running plugin its new grant (limits hold from its next call);
 * - `none`: it does not run (stopped, or failed before its manifest was read: a broken or duplicate
 *   source that a policy cannot mend); its next load takes the policy.
 */
export type PolicyAction = 'stop' | 'load' | 'reload' | 'update' | 'none'

/**
 * Decides {@link PolicyAction} from where the plugin stands (`loaded`: a version runs; `loadable`:
 * its manifest was read, so it failed loading, registering or initialising, not at discovery) and
 * the status before and after.
 */
export function policyAction(
  state: PluginState,
  loaded: boolean,
  previous: PolicyStatus | undefined,
  next: PolicyStatus,
  loadable = false,
): PolicyAction {
  if (next === 'blocked') return loaded || state !== 'blocked' ? 'stop' : 'none'
  if (state === 'blocked') return 'load'
  if (state === 'failed' && loadable) return 'load'
  if (!loaded) return 'none'
  if (previous === 'pending_review' && next !== 'pending_review') return 'reload'
  return 'update'
}
