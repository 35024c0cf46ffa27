import type { ResourcePolicy } from '@corral/types'
import { PluginError } from '@corral/types'
import { fieldErrorsFromIssues, formatFieldErrors } from './field-errors.js'
import { defaultLimits, defaultRateLimits } from './policy.js'
import { policyInputSchema } from './schema.js'

/**
 * Validates a policy as an administrator (or the policy store) gives it; limits left out take the
 * defaults. Fails with `invalid_argument` listing every problem.
 *
 * @example
 * parsePolicy({ plugin: 'stats', status: 'approved', grants: [{ type: 'db', access: ['read'], scope: ['stats_*'] }] })
 */
export function parsePolicy(value: unknown): ResourcePolicy {
  const result = policyInputSchema.safeParse(value)
  if (!result.success) {
    const fields = fieldErrorsFromIssues(result.error.issues, policyInputSchema)
    const list = formatFieldErrors(fields)
    throw new PluginError('invalid_argument', `policy is invalid:\n${list}`, { fields })
  }
  const input = result.data
  const policy: ResourcePolicy = {
    plugin: input.plugin,
    status: input.status,
    grants: input.grants,
    limits: { ...defaultLimits, ...input.limits },
    rate_limits: { ...defaultRateLimits, ...input.rate_limits },
  }
  if (input.secret_config_keys !== undefined) policy.secret_config_keys = input.secret_config_keys
  if (input.env !== undefined) policy.env = input.env
  if (input.unauthenticated_transport !== undefined)
    policy.unauthenticated_transport = input.unauthenticated_transport
  if (input.updated_at !== undefined) policy.updated_at = input.updated_at
  if (input.updated_by !== undefined) policy.updated_by = input.updated_by
  return policy
}
