import type { EffectiveGrant } from '@corral/types'
import { PluginError } from '@corral/types'
import type { RateDecision, RateLimiter } from '../rate-limit/rate-limiter.js'

/** The limiter key of the calls into `plugin`: its own, apart from the host calls the plugin makes. */
export function callsInKey(plugin: string): string {
  return `${plugin}:calls-in`
}

/**
 * Counts one call into `plugin` (under `key`, its {@link callsInKey}) against its policy's
 * `calls_per_second`; refuses with `rate_limited` and a retry-after when over. The limiter is the
 * backends' one, so every replica on one Redis counts in the same window. A limiter that answers
 * at once (the memory one) is answered at once: nothing to wait for when the call may go.
 */
export function admitCall(
  limiter: RateLimiter,
  plugin: string,
  key: string,
  grant: EffectiveGrant,
): undefined | Promise<void> {
  const limit = grant.rate_limits.calls_per_second
  const decision = limiter.hit(key, limit, 1000)
  if ('allowed' in decision) {
    refuseOver(decision, plugin, limit)
    return undefined
  }
  return Promise.resolve(decision).then((answer) => refuseOver(answer, plugin, limit))
}

function refuseOver(decision: RateDecision, plugin: string, limit: number): void {
  if (!decision.allowed) {
    throw new PluginError('rate_limited', `more than ${limit} calls per second into the plugin`, {
      plugin,
      retryAfterMs: decision.retryAfterMs,
    })
  }
}
