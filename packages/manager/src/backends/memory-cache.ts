import type { CacheStore } from './cache-store.js'

/** Options of {@link createMemoryCache}. */
export interface MemoryCacheOptions {
  /** The clock TTLs are measured on (epoch milliseconds). Default `Date.now`. */
  now?: () => number
  /** The most entries kept; the oldest are dropped first. Default 100 000. */
  maxEntries?: number
}

interface Entry {
  value: Buffer
  expiresAt: number
}

/**
 * The embedded cache: a Map in this process, with TTLs checked on read and a bound on entries.
 *
 * @example
 * const cache = createMemoryCache()
 * await cache.set('stats', 'today', Buffer.from('42'), 60_000)
 */
export function createMemoryCache(options: MemoryCacheOptions = {}): CacheStore {
  const now = options.now ?? Date.now
  const maxEntries = options.maxEntries ?? 100_000
  // One map with the namespace in the key: "<namespace>\0<key>"; NUL cannot be in a namespace.
  const entries = new Map<string, Entry>()
  const id = (namespace: string, key: string) => `${namespace}\0${key}`

  return {
    async get(namespace, key) {
      const entry = entries.get(id(namespace, key))
      if (entry === undefined) return null
      if (entry.expiresAt <= now()) {
        entries.delete(id(namespace, key))
        return null
      }
      return entry.value
    },
    async set(namespace, key, value, ttlMs) {
      const k = id(namespace, key)
      entries.delete(k)
      entries.set(k, { value: Buffer.from(value), expiresAt: ttlMs === undefined ? Infinity : now() + ttlMs })
      while (entries.size > maxEntries) {
        const oldest = entries.keys().next().value
        if (oldest === undefined) break
        entries.delete(oldest)
      }
    },
    async delete(namespace, key) {
      const k = id(namespace, key)
      const entry = entries.get(k)
      entries.delete(k)
      return entry !== undefined && entry.expiresAt > now()
    },
    async close() {
      entries.clear()
    },
  }
}
