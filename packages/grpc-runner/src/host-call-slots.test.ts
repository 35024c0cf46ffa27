import { afterEach, describe, expect, it, vi } from 'vitest'
import { HostCallSlots } from './host-call-slots.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('HostCallSlots', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('starts every waiting call eventually, in order, and ends with nothing held', async () => {
    const slots = new HostCallSlots({ calls: 2, bytes: 100, bytesPerSecond: 1000 })
    const order: number[] = []
    const ends: Array<() => void> = []
    const all = Array.from({ length: 6 }, (_, i) =>
      slots.run(40, async () => {
        order.push(i)
        await new Promise<void>((resolve) => ends.push(resolve))
      }),
    )
    while (order.length < 6) {
      await sleep(5)
      for (const end of ends.splice(0)) end()
    }
    await Promise.all(all)
    expect(order).toEqual([0, 1, 2, 3, 4, 5])
    expect(slots.full).toBe(false)
  })

  it('takes the next second’s bytes one second later, even if the wall clock steps back meanwhile', async () => {
    // The window is measured on the wall clock: when NTP (or an operator) sets the clock back, the
    // second whose bytes are spent lasts as long as the step, and the plugin's host calls wait that long.
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(new Date('2030-01-01T12:00:00Z'))
    const slots = new HostCallSlots({ calls: 10, bytes: 1000, bytesPerSecond: 100 })
    await slots.run(100, async () => undefined) // this second's bytes, spent
    expect(slots.full).toBe(true)
    vi.setSystemTime(new Date('2030-01-01T11:00:00Z')) // the clock is set back an hour
    let started = false
    const next = slots.run(10, async () => {
      started = true
    })
    await sleep(1500)
    expect(started).toBe(true)
    await next
  })
})
