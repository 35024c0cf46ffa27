import type { HostApi } from '@corral/types'
import { describe, expect, it } from 'vitest'
import { pluginCache } from './plugin-cache.js'

/** A host whose cache is a Map of what `cache.*` got, as the host API takes it (base64). */
function cacheHost(): { host: HostApi; stored: Map<string, { value: string; ttl?: number }> } {
  const stored = new Map<string, { value: string; ttl?: number }>()
  const host = {
    async call(method: string, args: { key: string; value?: string; ttl_seconds?: number }) {
      if (method === 'cache.get') return { value: stored.get(args.key)?.value ?? null }
      if (method === 'cache.set') {
        stored.set(args.key, {
          value: args.value ?? '',
          ...(args.ttl_seconds ? { ttl: args.ttl_seconds } : {}),
        })
        return {}
      }
      return { deleted: stored.delete(args.key) }
    },
  } as HostApi
  return { host, stored }
}

describe('pluginCache', () => {
  it('stores text as base64 and reads it back as text', async () => {
    const { host, stored } = cacheHost()
    const cache = pluginCache(host)
    await cache.setString('greeting', 'héllo ✓', 60)
    expect(stored.get('greeting')).toEqual({ value: Buffer.from('héllo ✓').toString('base64'), ttl: 60 })
    expect(await cache.getString('greeting')).toBe('héllo ✓')
  })

  it('reads a missing key as null and deletes', async () => {
    const { host } = cacheHost()
    const cache = pluginCache(host)
    expect(await cache.getString('none')).toBeNull()
    await cache.setString('k', '')
    expect(await cache.getString('k')).toBe('')
    expect(await cache.delete('k')).toBe(true)
    expect(await cache.delete('k')).toBe(false)
  })
})
