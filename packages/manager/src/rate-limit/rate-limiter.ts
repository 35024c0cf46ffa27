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
  hit(key: string, limit: number, windowMs: number): Promise<RateDecision>
  close(): Promise<void>
}

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
  const windows = new Map<string, { window: number; count: number }>()
  return {
    async hit(key, limit, windowMs) {
      const t = now()
      const window = Math.floor(t / windowMs)
      const id = `${key}|${windowMs}`
      let counter = windows.get(id)
      if (counter === undefined || counter.window !== window) {
        counter = { window, count: 0 }
        windows.set(id, counter)
        if (windows.size > 50_000) {
          for (const [k, c] of windows) if (c.window < window) windows.delete(k)
        }
      }
      counter.count += 1
      if (counter.count <= limit) return { allowed: true, retryAfterMs: 0 }
      return { allowed: false, retryAfterMs: (window + 1) * windowMs - t }
    },
    async close() {
      windows.clear()
    },
  }
}
