import { describe, expect, it } from 'vitest'
import { createMemoryRateLimiter } from './rate-limiter.js'

describe('createMemoryRateLimiter', () => {
  it('answers at once: at most limit hits per key and window, then the time to the window end', () => {
    let now = 10_250
    const limiter = createMemoryRateLimiter({ now: () => now })
    expect(limiter.hit('a', 2, 1000)).toEqual({ allowed: true, retryAfterMs: 0 })
    expect(limiter.hit('a', 2, 1000)).toEqual({ allowed: true, retryAfterMs: 0 })
    expect(limiter.hit('a', 2, 1000)).toEqual({ allowed: false, retryAfterMs: 750 })
    now = 11_000
    expect(limiter.hit('a', 2, 1000)).toEqual({ allowed: true, retryAfterMs: 0 })
  })

  it('counts each key and each window length apart', () => {
    const limiter = createMemoryRateLimiter({ now: () => 5_000 })
    expect(limiter.hit('a', 1, 1000)).toMatchObject({ allowed: true })
    expect(limiter.hit('a', 1, 1000)).toMatchObject({ allowed: false })
    expect(limiter.hit('b', 1, 1000)).toMatchObject({ allowed: true })
    expect(limiter.hit('a', 1, 60_000)).toMatchObject({ allowed: true })
    expect(limiter.hit('a', 1, 60_000)).toMatchObject({ allowed: false, retryAfterMs: 55_000 })
  })
})
