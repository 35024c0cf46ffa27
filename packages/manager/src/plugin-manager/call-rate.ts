import type { EffectiveGrant } from '@corral/types'
import { PluginError } from '@corral/types'
import type { RateLimiter } from '../rate-limit/rate-limiter.js'

/**
 * Counts one call into `plugin` against its policy's `calls_per_second` (the key is its own, apart
 * from the host calls the plugin makes); refuses with `rate_limited` and a retry-after when over.
 * The limiter is the backends' one, so every replica on one Redis counts in the same window.
 */
export async function admitCall(limiter: RateLimiter, plugin: string, grant: EffectiveGrant): Promise<void> {
  const limit = grant.rate_limits.calls_per_second
  const decision = await limiter.hit(`${plugin}:calls-in`, limit, 1000)
  if (!decision.allowed) {
    throw new PluginError('rate_limited', `more than ${limit} calls per second into the plugin`, {
      plugin,
      retryAfterMs: decision.retryAfterMs,
    })
  }
}
