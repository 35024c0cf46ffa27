import type { Redis } from 'ioredis'
import type { CacheStore } from './cache-store.js'

/**
 * The shared cache at scale: Redis, keys `corral:cache:<namespace>:<key>`, TTLs kept by Redis.
 * Host replicas on the same Redis see the same values.
 */
export function createRedisCache(redis: Redis): CacheStore {
  // Namespaces are plugin names, which cannot hold ':', so one namespace can never spell another's key.
  const id = (namespace: string, key: string) => `corral:cache:${namespace}:${key}`
  return {
    async get(namespace, key) {
      return redis.getBuffer(id(namespace, key))
    },
    async set(namespace, key, value, ttlMs) {
      if (ttlMs === undefined) await redis.set(id(namespace, key), value)
      else await redis.set(id(namespace, key), value, 'PX', Math.max(1, Math.ceil(ttlMs)))
    },
    async delete(namespace, key) {
      return (await redis.del(id(namespace, key))) > 0
    },
    async close() {},
  }
}
