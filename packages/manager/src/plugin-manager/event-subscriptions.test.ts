import { defaultLimits, defaultRateLimits } from '@corral/manifest'
import type { EffectiveGrant, EventSubscription } from '@corral/types'
import { afterEach, describe, expect, it } from 'vitest'
import { createLocalEventBus, type HostEvent } from '../backends/event-bus.js'
import {
  deliverSubscribedEvents,
  type EventSubscriber,
  handlersFor,
  mayReceive,
} from './event-subscriptions.js'

function grantOf(plugin: string, scope: string[]): EffectiveGrant {
  return {
    plugin,
    status: 'approved',
    permissions: scope.length === 0 ? [] : [{ type: 'events', access: [], scope }],
    limits: { ...defaultLimits },
    rate_limits: { ...defaultRateLimits },
    secret_config_keys: [],
    env: [],
    unauthenticated_transport: false,
  }
}

const event = (type: string, plugin = 'publisher', data: unknown = null): HostEvent => ({
  type,
  plugin,
  data,
  at: 1,
  token: 'secret-token',
})

describe('mayReceive / handlersFor', () => {
  it('needs an events permission covering the type', () => {
    expect(mayReceive(grantOf('a', ['stats.*']), 'stats.updated')).toBe(true)
    expect(mayReceive(grantOf('a', ['stats.*']), 'ticket.created')).toBe(false)
    expect(mayReceive(grantOf('a', []), 'stats.updated')).toBe(false)
    const cacheOnly: EffectiveGrant = {
      ...grantOf('a', []),
      permissions: [{ type: 'cache', access: ['read'], scope: ['*'] }],
    }
    expect(mayReceive(cacheOnly, 'stats.updated')).toBe(false)
  })

  it("never lets * reach the host corral.* types (only a glob naming the prefix does), nor any glob the replicas' commands", () => {
    expect(mayReceive(grantOf('a', ['*']), 'corral.plugin.state')).toBe(false)
    expect(mayReceive(grantOf('a', ['corral.plugin.*']), 'corral.plugin.state')).toBe(true)
    expect(mayReceive(grantOf('a', ['corral.*']), 'corral.plugin.state')).toBe(true)
    expect(mayReceive(grantOf('a', ['corral.*']), 'corral.command')).toBe(false)
    const all: EventSubscription[] = [{ type: '*', handler: 'on_all' }]
    expect(handlersFor(all, 'corral.job.result')).toEqual([])
    expect(handlersFor([...all, { type: 'corral.*', handler: 'on_host' }], 'corral.job.result')).toEqual([
      'on_host',
    ])
    expect(handlersFor(all, 'stats.updated')).toEqual(['on_all'])
  })
})

describe('deliverSubscribedEvents', () => {
  const bus = createLocalEventBus()
  let stop: (() => void) | undefined
  afterEach(() => stop?.())

  function start(
    subscribers: EventSubscriber[],
    call: (plugin: string, handler: string, e: HostEvent) => Promise<unknown>,
    queueSize?: number,
  ) {
    const dropped: string[] = []
    const logged: string[] = []
    stop = deliverSubscribedEvents({
      bus,
      subscribers: () => subscribers,
      call,
      dropped: (plugin) => dropped.push(plugin),
      logger: { log: (level, message) => logged.push(`${level}: ${message}`) },
      queueSize,
    })
    return { dropped, logged }
  }

  const settle = () => new Promise((resolve) => setImmediate(resolve))

  it('calls the handlers of granted subscribers with the event, not the publisher itself', async () => {
    const calls: Array<[string, string, HostEvent]> = []
    start(
      [
        {
          plugin: 'sub',
          subscriptions: [{ type: 'stats.*', handler: 'on_stats' }],
          grant: grantOf('sub', ['stats.*']),
        },
        {
          plugin: 'nosy',
          subscriptions: [{ type: 'stats.*', handler: 'on_stats' }],
          grant: grantOf('nosy', []),
        },
        {
          plugin: 'publisher',
          subscriptions: [{ type: 'stats.*', handler: 'on_stats' }],
          grant: grantOf('publisher', ['stats.*']),
        },
      ],
      async (plugin, handler, e) => {
        calls.push([plugin, handler, e])
      },
    )
    await bus.publish(event('stats.updated', 'publisher', { rows: 3 }))
    await bus.publish(event('ticket.created'))
    await bus.publish(event('corral.plugin.state'))
    await settle()
    expect(calls).toEqual([['sub', 'on_stats', event('stats.updated', 'publisher', { rows: 3 })]])
  })

  it('never blocks the bus on a slow handler: its queue is bounded, drops counted and logged once per run', async () => {
    const releases: Array<() => void> = []
    const fast: string[] = []
    const { dropped, logged } = start(
      [
        { plugin: 'slow', subscriptions: [{ type: 'x.*', handler: 'h' }], grant: grantOf('slow', ['x.*']) },
        { plugin: 'fast', subscriptions: [{ type: 'x.*', handler: 'h' }], grant: grantOf('fast', ['x.*']) },
      ],
      (plugin, _handler, e) => {
        if (plugin === 'fast') {
          fast.push(String(e.data))
          return Promise.resolve()
        }
        return new Promise<void>((resolve) => releases.push(resolve))
      },
      2,
    )
    for (let i = 0; i < 6; i++) await bus.publish(event('x.tick', 'publisher', i))
    await settle()
    // One running, two waiting, three dropped; the other plugin got every event.
    expect(releases).toHaveLength(1)
    expect(dropped).toEqual(['slow', 'slow', 'slow'])
    expect(logged.filter((line) => line.includes('events dropped'))).toHaveLength(1)
    expect(fast).toEqual(['0', '1', '2', '3', '4', '5'])
    releases.shift()?.()
    await settle()
    expect(releases).toHaveLength(1)
    releases.shift()?.()
    await settle()
    releases.shift()?.()
    await settle()
    expect(releases).toHaveLength(0)
  })

  it('logs a failing handler and goes on with the next event', async () => {
    const seen: unknown[] = []
    const { logged } = start(
      [{ plugin: 'sub', subscriptions: [{ type: 'x.*', handler: 'h' }], grant: grantOf('sub', ['x.*']) }],
      async (_plugin, _handler, e) => {
        seen.push(e.data)
        if (e.data === 1) throw new Error('handler broke')
      },
    )
    await bus.publish(event('x.a', 'publisher', 1))
    await bus.publish(event('x.b', 'publisher', 2))
    await settle()
    await settle()
    expect(seen).toEqual([1, 2])
    expect(logged.some((line) => line.startsWith('warn: the handler h failed on event x.a'))).toBe(true)
  })

  it('delivers nothing once stopped', async () => {
    const calls: string[] = []
    start(
      [{ plugin: 'sub', subscriptions: [{ type: 'x.*', handler: 'h' }], grant: grantOf('sub', ['x.*']) }],
      async (plugin) => {
        calls.push(plugin)
      },
    )
    stop?.()
    await bus.publish(event('x.a'))
    await settle()
    expect(calls).toEqual([])
  })
})
