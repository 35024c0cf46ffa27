import { withStoredPolicies } from './api/policy-decisions.js'
import type { PluginManager } from './manager-api.js'

/**
 * The plugins as the start-up summary lists them, one a line: state, runtime, version and policy
 * (the stored one, for a plugin that failed before its policy was read), and under one that does
 * not run, the first line of why.
 *
 * @example
 * //     ✓ hello-wasm 0.1.0 [wasm] running, policy approved
 * //     ✗ bad-yaml  [?] failed, policy approved
 * //         manifest_invalid: version: must be a semantic version
 */
export async function pluginSummaryLines(manager: PluginManager): Promise<string[]> {
  const plugins = await withStoredPolicies(manager, manager.list())
  return plugins.flatMap((p) => {
    const line = `    ${p.state === 'running' ? '✓' : '✗'} ${p.name} ${p.version ?? ''} [${p.runtime ?? '?'}] ${p.state}, policy ${p.policy?.status ?? 'pending_review'}`
    if (p.state === 'running' || p.lastError === undefined) return [line]
    const why = p.lastError.message.trim().split('\n', 1)[0]
    return [line, `        ${p.lastError.code}: ${why}`]
  })
}
