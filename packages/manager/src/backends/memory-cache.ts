import type { CacheStore } from './cache-store.js'

/** Options of {@link createMemoryCache}. */
export interface MemoryCacheOptions {
  /** The clock TTLs are measured on (epoch milliseconds). Default `Date.now`. */
  now?: () => number
  /**
   * The most entries one namespace (one plugin) keeps; its least recently written are dropped
   * first, so a plugin that floods the cache evicts only its own entries. Default 10 000.
   */
  maxEntriesPerNamespace?: number
}

interface Entry {
  value: Buffer
  expiresAt: number
}

/**
 * The embedded cache: Maps in this process, one per namespace, with TTLs checked on read and a
 * bound on entries per namespace.
 *
 * @example
 * const cache = createMemoryCache()
 * await cache.set('stats', 'today', Buffer.from('42'), 60_000)
 */
export function createMemoryCache(options: MemoryCacheOptions = {}): CacheStore {
  const now = options.now ?? Date.now
  const maxEntries = options.maxEntriesPerNamespace ?? 10_000
  const namespaces = new Map<string, Map<string, Entry>>()

  return {
    async get(namespace, key) {
      const entries = namespaces.get(namespace)
      const entry = entries?.get(key)
      if (entries === undefined || entry === undefined) return null
      if (entry.expiresAt <= now()) {
        entries.delete(key)
        return null
      }
      return entry.value
    },
    async set(namespace, key, value, ttlMs) {
      let entries = namespaces.get(namespace)
      if (entries === undefined) {
        entries = new Map()
        namespaces.set(namespace, entries)
      }
      entries.delete(key)
      entries.set(key, {
        value: Buffer.from(value),
        expiresAt: ttlMs === undefined ? Infinity : now() + ttlMs,
      })
      while (entries.size > maxEntries) {
        const oldest = entries.keys().next().value
        if (oldest === undefined) break
        entries.delete(oldest)
      }
    },
    async delete(namespace, key) {
      const entries = namespaces.get(namespace)
      const entry = entries?.get(key)
      entries?.delete(key)
      return entry !== undefined && entry.expiresAt > now()
    },
    async close() {
      namespaces.clear()
    },
  }
}
