import type { HostApi } from '@corral/types'

/**
 * The plugin's own cache namespace with text values, as the AssemblyScript SDK's `cache` has it.
 * The host API stores bytes (base64 on the wire); these helpers hold UTF-8 text.
 */
export interface PluginCache {
  /** The text stored at `key`, or `null` when there is none (or it expired). */
  getString(key: string): Promise<string | null>
  /** Stores `value` at `key`, for `ttlSeconds` when given. */
  setString(key: string, value: string, ttlSeconds?: number): Promise<void>
  /** Removes `key`; whether there was one. */
  delete(key: string): Promise<boolean>
}

/** The {@link PluginCache} over `host`'s `cache.*` methods. */
export function pluginCache(host: HostApi): PluginCache {
  return {
    async getString(key) {
      const { value } = await host.call('cache.get', { key })
      return value === null ? null : Buffer.from(value, 'base64').toString('utf8')
    },
    async setString(key, value, ttlSeconds) {
      await host.call('cache.set', {
        key,
        value: Buffer.from(value, 'utf8').toString('base64'),
        ...(ttlSeconds === undefined ? {} : { ttl_seconds: ttlSeconds }),
      })
    },
    async delete(key) {
      return (await host.call('cache.delete', { key })).deleted
    },
  }
}
