import { defaultLimits } from '@corral/manifest'
import type { EffectiveGrant } from '@corral/types'
import { afterAll, describe, expect, it } from 'vitest'
import { createLocalEventBus } from '../backends/event-bus.js'
import { createMemoryCache } from '../backends/memory-cache.js'
import type { SqlDatabase, SqlRunOptions } from '../backends/sql-database.js'
import { createMemoryRateLimiter } from '../rate-limit/rate-limiter.js'
import { createSandboxedHostApi } from './sandboxed-host-api.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const grant: EffectiveGrant = {
  plugin: 'writer',
  status: 'approved',
  permissions: [{ type: 'db', access: ['read', 'write'], scope: ['writer_*'] }],
  limits: {
    ...defaultLimits,
    memory_mb: 64,
    call_timeout: 1000,
    init_timeout: 1000,
    shutdown_timeout: 1000,
    max_output_bytes: 1 << 20,
  },
  rate_limits: { calls_per_second: 1000, db_queries_per_minute: 1000, http_requests_per_minute: 1000 },
  secret_config_keys: [],
  env: [],
  unauthenticated_transport: false,
}

/**
 * A database whose write runs `ranMs`, then asks `keep()`, then commits for `commitMs`: the
 * boundary between a write the caller still waits for and one it has given up on.
 */
function timedDatabase(ranMs: number, commitMs: number): SqlDatabase & { kept: boolean[] } {
  const kept: boolean[] = []
  return {
    dialect: 'sqlite',
    kept,
    async query() {
      return []
    },
    async exec(_sql: string, _params: unknown, run?: SqlRunOptions) {
      await sleep(ranMs)
      const keep = run?.keep?.() ?? true
      kept.push(keep)
      if (!keep) throw new Error('rolled back')
      await sleep(commitMs)
      return 1
    },
    async close() {},
  }
}

describe('createSandboxedHostApi: a write at the deadline', () => {
  const cache = createMemoryCache()
  const rateLimiter = createMemoryRateLimiter()
  const events = createLocalEventBus()
  afterAll(async () => {
    await Promise.all([cache.close(), rateLimiter.close(), events.close()])
  })

  function hostOver(database: SqlDatabase) {
    const hostApi = createSandboxedHostApi({
      backends: { database, cache, rateLimiter, events },
      grants: () => grant,
      audit: { record: async () => {}, list: async () => [] },
      logger: { log() {} },
    })
    return hostApi.forPlugin('writer')
  }
  const insert = { sql: "INSERT INTO writer_log (v) VALUES ('a')" }

  it('returns the result of a write committed within the deadline, even if the commit ends after it', async () => {
    const database = timedDatabase(10, 600)
    const call = hostOver(database)('db.exec', insert, { plugin: 'writer', deadline: Date.now() + 400 })
    await expect(call).resolves.toEqual({ rows_affected: 1 })
    expect(database.kept).toEqual([true])
  })

  it('drops a write that ran past the deadline: the caller already has deadline_exceeded', async () => {
    const database = timedDatabase(300, 0)
    const call = hostOver(database)('db.exec', insert, { plugin: 'writer', deadline: Date.now() + 100 })
    await expect(call).rejects.toMatchObject({ code: 'deadline_exceeded' })
    await sleep(300)
    expect(database.kept).toEqual([false])
  })
})

describe('createSandboxedHostApi: work a runner does for a plugin (meter)', () => {
  it('counts it against the same host calls per second as the plugin host calls, and records it', async () => {
    // A clock that stands still: every hit falls in one rate-limit window.
    const rateLimiter = createMemoryRateLimiter({ now: () => 0 })
    const cache = createMemoryCache()
    const events = createLocalEventBus()
    const hostApi = createSandboxedHostApi({
      backends: { database: timedDatabase(0, 0), cache, rateLimiter, events },
      grants: () => ({ ...grant, rate_limits: { ...grant.rate_limits, calls_per_second: 3 } }),
      audit: { record: async () => {}, list: async () => [] },
      logger: { log() {} },
      now: () => 0,
    })
    const writer = hostApi.forPlugin('writer')
    const context = { plugin: 'writer' }
    await writer.meter?.('extism.var_set', context)
    await writer.meter?.('extism.var_set', context)
    await writer('i18n.translate', { key: 'hello' }, context)
    await expect(writer.meter?.('extism.var_set', context)).rejects.toMatchObject({ code: 'rate_limited' })
    await expect(writer('i18n.translate', { key: 'hello' }, context)).rejects.toMatchObject({
      code: 'rate_limited',
    })
    expect(hostApi.metrics('writer').writer?.['extism.var_set']).toMatchObject({
      calls: 3,
      failures: { rate_limited: 1 },
    })
    await Promise.all([cache.close(), rateLimiter.close(), events.close()])
  })
})

describe('createSandboxedHostApi: events.publish and the host’s own event types', () => {
  it('refuses a type starting with corral. even to a plugin granted every event type', async () => {
    const events = createLocalEventBus()
    const published: string[] = []
    events.subscribe((event) => published.push(event.type))
    const hostApi = createSandboxedHostApi({
      backends: {
        database: timedDatabase(0, 0),
        cache: createMemoryCache(),
        rateLimiter: createMemoryRateLimiter(),
        events,
      },
      grants: () => ({ ...grant, permissions: [{ type: 'events', access: [], scope: ['*'] }] }),
      audit: { record: async () => {}, list: async () => [] },
      logger: { log() {} },
    })
    const publish = (type: string) =>
      hostApi.forPlugin('writer')(
        'events.publish',
        { type },
        { plugin: 'writer', deadline: Date.now() + 1000 },
      )
    await expect(publish('corral.plugin.state')).rejects.toMatchObject({ code: 'permission_denied' })
    await expect(publish('writer.done')).resolves.toEqual({})
    expect(published).toEqual(['writer.done'])
  })
})
