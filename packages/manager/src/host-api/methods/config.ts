import { matchAnyScope } from '@corral/manifest'
import { PluginError } from '@corral/types'
import { z } from 'zod'
import { defineMethod, requireGrant } from '../method-handler.js'

const configKey = z
  .string()
  .max(256)
  .regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, 'must be dot-separated names of A-Z, a-z, 0-9, "_" and "-"')

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/**
 * A copy of `value` (found at `path`) without anything whose path is a secret. A list's items are
 * named by their index (`servers.0.password`); a secret item is left as null, keeping the others'.
 */
function withoutSecrets(value: unknown, path: string, secrets: readonly string[]): unknown {
  if (Array.isArray(value)) {
    return value.map((item, index) => {
      const itemPath = `${path}.${index}`
      return matchAnyScope(secrets, itemPath) ? null : withoutSecrets(item, itemPath, secrets)
    })
  }
  if (!isPlainObject(value)) return value
  const out: Record<string, unknown> = {}
  for (const [name, child] of Object.entries(value)) {
    const childPath = `${path}.${name}`
    if (!matchAnyScope(secrets, childPath)) out[name] = withoutSecrets(child, childPath, secrets)
  }
  return out
}

/**
 * `config.get`: one value of the plugin's configuration by dotted key (`smtp.host`), or null.
 * Needs `config` on the key. Keys the policy marks secret are refused, and removed from any
 * object value returned for a parent key.
 */
export const configGet = defineMethod({
  args: z.strictObject({ key: configKey }),
  async run(args, scope) {
    scope.describe(args.key)
    requireGrant(scope, 'config', args.key)
    const secrets = scope.grant.secret_config_keys
    if (matchAnyScope(secrets, args.key)) {
      throw new PluginError('permission_denied', `config key ${args.key} is a secret`, {
        plugin: scope.plugin,
      })
    }
    let value: unknown = (await scope.config()) ?? {}
    for (const part of args.key.split('.')) {
      value = isPlainObject(value) && Object.hasOwn(value, part) ? value[part] : undefined
    }
    return { value: value === undefined ? null : withoutSecrets(value, args.key, secrets) }
  },
})
