import { PluginError } from '@corral/types'
import { z } from 'zod'
import { defineMethod, requireGrant } from '../method-handler.js'

const key = z.string().min(1).max(512)
const base64 = /^[A-Za-z0-9+/]*={0,2}$/

/** `cache.get`: a value of the plugin's own namespace (base64), or null. Needs `cache` read on the key. */
export const cacheGet = defineMethod({
  args: z.strictObject({ key }),
  async run(args, scope) {
    scope.describe(args.key)
    requireGrant(scope, 'cache', args.key, 'read')
    const value = await scope.deps.cache.get(scope.plugin, args.key)
    return { value: value === null ? null : value.toString('base64') }
  },
})

/** `cache.set`: stores a base64 value in the plugin's namespace, optionally with a TTL. Needs `cache` write. */
export const cacheSet = defineMethod({
  args: z.strictObject({
    key,
    value: z.string().regex(base64, 'must be base64'),
    ttl_seconds: z
      .number()
      .positive()
      .max(365 * 24 * 3600)
      .optional(),
  }),
  async run(args, scope) {
    scope.describe(args.key)
    requireGrant(scope, 'cache', args.key, 'write')
    const value = Buffer.from(args.value, 'base64')
    if (value.length > scope.deps.limits.cacheMaxValueBytes) {
      throw new PluginError(
        'resource_exhausted',
        `cache values are at most ${scope.deps.limits.cacheMaxValueBytes} bytes`,
      )
    }
    const ttlMs = args.ttl_seconds === undefined ? undefined : args.ttl_seconds * 1000
    await scope.deps.cache.set(scope.plugin, args.key, value, ttlMs)
    return {}
  },
})

/** `cache.delete`: removes a key of the plugin's namespace. Needs `cache` write. */
export const cacheDelete = defineMethod({
  args: z.strictObject({ key }),
  async run(args, scope) {
    scope.describe(args.key)
    requireGrant(scope, 'cache', args.key, 'write')
    return { deleted: await scope.deps.cache.delete(scope.plugin, args.key) }
  },
})
