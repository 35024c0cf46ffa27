import type { Redis } from 'ioredis'
import type { RateDecision, RateLimiter } from './rate-limiter.js'

/** Counts one hit and sets the window's expiry on its first hit, atomically. */
const hitScript = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return count`

/**
 * Rate limits shared by every host replica on one Redis: one counter per key and window
 * (`corral:rate:<key>:<windowMs>:<window>`), expiring with its window.
 */
export function createRedisRateLimiter(redis: Redis, now: () => number = Date.now): RateLimiter {
  return {
    async hit(key, limit, windowMs): Promise<RateDecision> {
      const t = now()
      const window = Math.floor(t / windowMs)
      const count = Number(
        await redis.eval(hitScript, 1, `corral:rate:${key}:${windowMs}:${window}`, windowMs * 2),
      )
      if (count <= limit) return { allowed: true, retryAfterMs: 0 }
      return { allowed: false, retryAfterMs: (window + 1) * windowMs - t }
    },
    async close() {},
  }
}
