import { PluginError } from '@corral/types'
import { beforeEach, describe, expect, it } from 'vitest'
import { type ManualClock, manualClock } from '../testing/manual-clock.js'
import { failure } from '../testing/plugin-failure.js'
import { InstancePool, type PooledInstance, PoolGroup, type PoolLimits } from './instance-pool.js'

/** An instance without a worker: it lives until the test stops it. */
class FakeInstance implements PooledInstance {
  alive = true
  canQueue = false
  maxCalls = 2
  terminated = false
  constructor(readonly id: number) {}
  /** Why it was terminated: undefined for a shutdown. */
  reason: PluginError | undefined
  terminate(reason?: PluginError): Promise<void> {
    this.alive = false
    this.terminated = true
    this.reason = reason
    return Promise.resolve()
  }
}

const farAway = 1e12
let clock: ManualClock
let started: FakeInstance[]
let startFails: PluginError | undefined

function pool(limits: Partial<PoolLimits> = {}, group?: PoolGroup): InstancePool<FakeInstance> {
  return new InstancePool<FakeInstance>({
    plugin: 'p',
    group,
    maxInstances: 2,
    maxConcurrentCalls: 100,
    maxQueuedCalls: 100,
    waitTimeoutMs: 1_000,
    idleTimeoutMs: farAway,
    ...limits,
    clock,
    create: async () => {
      if (startFails !== undefined) throw startFails
      const instance = new FakeInstance(started.length + 1)
      started.push(instance)
      return instance
    },
  })
}

/** Whether `promise` has settled once pending callbacks have run. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false
  promise.then(
    () => (done = true),
    () => (done = true),
  )
  for (let i = 0; i < 5; i++) await Promise.resolve()
  return done
}

beforeEach(() => {
  clock = manualClock()
  started = []
  startFails = undefined
})

describe('InstancePool', () => {
  it('starts instances on demand up to maxInstances, and reuses released ones', async () => {
    const p = pool()
    const a = await p.acquire(farAway)
    const b = await p.acquire(farAway)
    expect([a.id, b.id]).toEqual([1, 2])
    p.release(a)
    expect((await p.acquire(farAway)).id).toBe(1)
    expect(started).toHaveLength(2)
  })

  it('queues a caller when every instance is busy, and serves waiters first come first served', async () => {
    const p = pool({ maxInstances: 1 })
    const a = await p.acquire(farAway)
    const first = p.acquire(farAway)
    const second = p.acquire(farAway)
    expect(await settled(first)).toBe(false)
    p.release(a)
    expect(await first).toBe(a)
    expect(await settled(second)).toBe(false)
    p.release(a)
    expect(await second).toBe(a)
  })

  it('queues a call behind a running one where the instance and the caller allow it', async () => {
    const p = pool({ maxInstances: 1 })
    const a = await p.acquire(farAway)
    a.canQueue = true
    expect(await settled(p.acquire(farAway, undefined, () => false))).toBe(false)
    expect(await p.acquire(farAway)).toBe(a)
  })

  it('in a group, grows past its first instance only while the group has room; a freed one serves the waiter', async () => {
    const group = new PoolGroup(3)
    const p = pool({ maxInstances: 4 }, group)
    const q = pool({ maxInstances: 4 }, group)
    const a = await p.acquire(farAway)
    const b = await p.acquire(farAway)
    const c = await q.acquire(farAway) // the group's third busy instance
    expect(started).toHaveLength(3)
    const waiting = p.acquire(farAway)
    expect(await settled(waiting)).toBe(false)
    expect(started).toHaveLength(3)
    // A pool's first instance starts even in a full group: nothing else would serve its callers.
    const r = pool({ maxInstances: 4 }, group)
    const d = await r.acquire(farAway)
    expect(started).toHaveLength(4)
    p.release(b)
    expect(await waiting).toBe(b)
    // Idle instances leave room: once the other pools' calls end, p may grow again.
    q.release(c)
    r.release(d)
    expect([a, b]).not.toContain(await p.acquire(farAway))
    expect(started).toHaveLength(5)
  })

  it('refuses a caller at once when maxQueuedCalls callers already wait', async () => {
    const p = pool({ maxInstances: 1, maxQueuedCalls: 1 })
    await p.acquire(farAway)
    void p.acquire(farAway).catch(() => undefined)
    const refused = await failure(p.acquire(farAway))
    expect([refused.code, refused.rawMessage]).toEqual([
      'resource_exhausted',
      "the plugin's call queue is full (max_queued_calls 1)",
    ])
  })

  it('holds at most maxConcurrentCalls calls, even with instances to spare', async () => {
    const p = pool({ maxInstances: 4, maxConcurrentCalls: 1 })
    const a = await p.acquire(farAway)
    const waiting = p.acquire(farAway)
    expect(await settled(waiting)).toBe(false)
    p.release(a)
    expect(await waiting).toBe(a)
    expect(started).toHaveLength(1)
  })

  it('gives up a wait at waitTimeoutMs with resource_exhausted, or at the deadline with deadline_exceeded', async () => {
    const p = pool({ maxInstances: 1, waitTimeoutMs: 1_000 })
    await p.acquire(farAway)
    const byWait = p.acquire(farAway)
    const byDeadline = p.acquire(clock.now() + 100)
    clock.advance(100)
    expect((await failure(byDeadline)).code).toBe('deadline_exceeded')
    expect(await settled(byWait)).toBe(false)
    clock.advance(900)
    const error = await failure(byWait)
    expect(error.code).toBe('resource_exhausted')
    expect(error.rawMessage).toContain('no instance freed up in 1000 ms')
  })

  it('gives up a wait when its signal aborts: canceled', async () => {
    const p = pool({ maxInstances: 1 })
    await p.acquire(farAway)
    const abort = new AbortController()
    const waiting = p.acquire(farAway, abort.signal)
    abort.abort()
    expect((await failure(waiting)).code).toBe('canceled')
  })

  it('drops a lost instance on release and starts its replacement for the next caller', async () => {
    const p = pool({ maxInstances: 1 })
    const a = await p.acquire(farAway)
    const waiting = p.acquire(farAway)
    a.alive = false // lost: its worker died
    p.release(a)
    const b = await waiting
    expect(b).not.toBe(a)
    expect(started).toHaveLength(2)
  })

  it('fails the caller an instance was started for when the start fails, and frees its place', async () => {
    const p = pool({ maxInstances: 1 })
    startFails = new PluginError('load_failed', 'no module')
    expect((await failure(p.acquire(farAway))).code).toBe('load_failed')
    startFails = undefined
    expect((await p.acquire(farAway)).id).toBe(1)
  })

  it('shrinks: idle instances beyond a lowered maxInstances stop at once, busy ones when released', async () => {
    const p = pool({ maxInstances: 3 })
    const [a, b, c] = [await p.acquire(farAway), await p.acquire(farAway), await p.acquire(farAway)]
    p.release(a)
    p.release(b)
    p.resize({
      maxInstances: 1,
      maxConcurrentCalls: 100,
      maxQueuedCalls: 100,
      waitTimeoutMs: 1_000,
      idleTimeoutMs: farAway,
    })
    expect([a.terminated, b.terminated, c.terminated]).toEqual([true, true, false])
    expect(p.size).toBe(1)
    const waiting = p.acquire(farAway)
    expect(await settled(waiting)).toBe(false)
    p.release(c)
    expect(await waiting).toBe(c)
  })

  it('grows: room added by resize serves the waiting callers', async () => {
    const p = pool({ maxInstances: 1 })
    await p.acquire(farAway)
    const waiting = p.acquire(farAway)
    p.resize({
      maxInstances: 2,
      maxConcurrentCalls: 100,
      maxQueuedCalls: 100,
      waitTimeoutMs: 1_000,
      idleTimeoutMs: farAway,
    })
    expect((await waiting).id).toBe(2)
  })

  it('retires instances: idle ones stop at once, busy ones when released; new ones start after', async () => {
    const p = pool({ maxInstances: 2 })
    const [a, b] = [await p.acquire(farAway), await p.acquire(farAway)]
    p.release(a)
    p.retire()
    expect([a.terminated, b.terminated]).toEqual([true, false])
    p.release(b)
    expect(b.terminated).toBe(true)
    expect((await p.acquire(farAway)).id).toBe(3)
  })

  it('while paused starts nothing; a wait that ends fails with the pause reason; resume serves waiters', async () => {
    const p = pool({ maxInstances: 1 })
    const reason = new PluginError('unavailable', 'restarting')
    p.pause(reason)
    const timesOut = p.acquire(clock.now() + 100)
    const waits = p.acquire(farAway)
    clock.advance(100)
    expect(await failure(timesOut)).toBe(reason)
    expect(started).toHaveLength(0)
    const abort = new AbortController()
    const aborted = p.acquire(farAway, abort.signal)
    abort.abort()
    expect((await failure(aborted)).code).toBe('canceled')
    const restarted = new FakeInstance(99)
    p.resume(restarted)
    expect(await waits).toBe(restarted)
  })

  it('quarantine: paused, then terminateAll fails every waiter and terminates every instance with the reason', async () => {
    const p = pool({ maxInstances: 1 })
    const a = await p.acquire(farAway)
    const waiting = p.acquire(farAway)
    const reason = new PluginError('unavailable', 'quarantined')
    p.pause(reason)
    await p.terminateAll(reason)
    expect(await failure(waiting)).toBe(reason)
    expect([a.terminated, a.reason]).toEqual([true, reason])
    expect(p.size).toBe(0)
    // Nothing starts after: a caller who still gets through to the pool waits in vain.
    const later = p.acquire(clock.now() + 10)
    clock.advance(10)
    expect(await failure(later)).toBe(reason)
    expect(started).toHaveLength(1)
  })

  it('stops instances idle for idleTimeoutMs, least recently used first, down to none', async () => {
    const p = pool({ maxInstances: 2, idleTimeoutMs: 1_000 })
    const a = await p.acquire(farAway)
    const b = await p.acquire(farAway)
    p.release(a)
    clock.advance(600)
    p.release(b)
    clock.advance(400)
    expect([a.terminated, b.terminated, p.size]).toEqual([true, false, 1])
    clock.advance(599)
    expect(b.terminated).toBe(false)
    clock.advance(1)
    expect([b.terminated, p.size, clock.pending]).toEqual([true, 0, 0])
  })

  it('keeps an instance used within idleTimeoutMs; after all stopped, the next caller starts one', async () => {
    const p = pool({ maxInstances: 1, idleTimeoutMs: 1_000 })
    const a = await p.acquire(farAway)
    p.release(a)
    clock.advance(900)
    p.release(await p.acquire(farAway))
    clock.advance(900)
    expect(a.terminated).toBe(false)
    clock.advance(100)
    expect(a.terminated).toBe(true)
    const next = await p.acquire(farAway)
    expect([next.id, started.length]).toEqual([2, 2])
  })

  it('serves a caller arriving while the last instance stops, once it is gone (maxInstances holds)', async () => {
    let stopped: (() => void) | undefined
    const p = new InstancePool<FakeInstance>({
      plugin: 'p',
      maxInstances: 1,
      maxConcurrentCalls: 100,
      maxQueuedCalls: 100,
      waitTimeoutMs: 1_000,
      idleTimeoutMs: 1_000,
      clock,
      create: async () => {
        const instance = new FakeInstance(started.length + 1)
        started.push(instance)
        return instance
      },
      stopIdle: (instance) =>
        new Promise<void>((resolve) => {
          stopped = () => void instance.terminate().then(resolve)
        }),
    })
    p.release(await p.acquire(farAway))
    clock.advance(1_000)
    expect(stopped).toBeDefined()
    const waiting = p.acquire(farAway)
    expect(await settled(waiting)).toBe(false)
    expect(started).toHaveLength(1)
    stopped?.()
    const served = await waiting
    expect([served.id, started[0]?.terminated]).toEqual([2, true])
  })

  it('takes a new idleTimeoutMs on resize, and sets no idle timer once closed', async () => {
    const p = pool({ maxInstances: 1, idleTimeoutMs: farAway })
    p.release(await p.acquire(farAway))
    p.resize({
      maxInstances: 1,
      maxConcurrentCalls: 100,
      maxQueuedCalls: 100,
      waitTimeoutMs: 1_000,
      idleTimeoutMs: 50,
    })
    const a = await p.acquire(farAway)
    p.release(a)
    clock.advance(farAway)
    expect(a.terminated).toBe(true)
    p.release(await p.acquire(farAway))
    p.close()
    expect(clock.pending).toBe(0)
  })

  it('once closed, refuses callers and fails the waiting ones with unavailable', async () => {
    const p = pool({ maxInstances: 1 })
    await p.acquire(farAway)
    const waiting = p.acquire(farAway)
    p.close()
    expect((await failure(waiting)).code).toBe('unavailable')
    expect((await failure(p.acquire(farAway))).code).toBe('unavailable')
  })
})
