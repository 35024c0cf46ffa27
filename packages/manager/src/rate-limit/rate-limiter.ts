/** The answer of a {@link RateLimiter}: go, or wait `retryAfterMs`. */
export interface RateDecision {
  allowed: boolean
  /** When refused: milliseconds until the window that refused ends. 0 when allowed. */
  retryAfterMs: number
}

/**
 * Fixed-window rate limits: at most `limit` hits per `windowMs` for one key. Windows are aligned
 * on the clock (epoch / windowMs), so every host replica sharing a store counts in the same window.
 */
export interface RateLimiter {
  /**
   * Counts one hit. A limiter that keeps its counters in this process answers at once, so that a
   * call it lets through does not wait a turn of the event loop (the manager's call path).
   */
  hit(key: string, limit: number, windowMs: number): RateDecision | Promise<RateDecision>
  close(): Promise<void>
}

/** The answer to every hit within its limit (one object, not one per hit). */
const allowed: RateDecision = Object.freeze({ allowed: true, retryAfterMs: 0 })

/** Options of {@link createMemoryRateLimiter}. */
export interface MemoryRateLimiterOptions {
  /** Epoch milliseconds. Default `Date.now`. */
  now?: () => number
}

/**
 * The embedded rate limiter: counters in this process.
 *
 * @example
 * const limiter = createMemoryRateLimiter()
 * const { allowed, retryAfterMs } = await limiter.hit('stats:calls', 100, 1000)
 */
export function createMemoryRateLimiter(options: MemoryRateLimiterOptions = {}): RateLimiter {
  const now = options.now ?? Date.now
  // Counters by window length, then by key: the caller's key is looked up as it is (no key string
  // built per hit).
  const counters = new Map<number, Map<string, { window: number; count: number }>>()
  return {
    hit(key, limit, windowMs) {
      const t = now()
      const window = Math.floor(t / windowMs)
      let windows = counters.get(windowMs)
      if (windows === undefined) {
        windows = new Map()
        counters.set(windowMs, windows)
      }
      let counter = windows.get(key)
      if (counter === undefined || counter.window !== window) {
        counter = { window, count: 0 }
        windows.set(key, counter)
        if (windows.size > 50_000) {
          for (const [k, c] of windows) if (c.window < window) windows.delete(k)
        }
      }
      counter.count += 1
      if (counter.count <= limit) return allowed
      return { allowed: false, retryAfterMs: (window + 1) * windowMs - t }
    },
    async close() {
      counters.clear()
    },
  }
}
