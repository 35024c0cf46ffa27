import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Backends } from '../backends/create-backends.js'
import {
  backendSetKinds,
  createTestClock,
  openBackendSet,
  prepareBackendSet,
} from '../testing/backend-sets.js'
import { withHeldPolicyReads } from '../testing/held-policy-reads.js'
import { createSqlAuditLog } from './audit-log.js'
import { createSqlPolicyStore } from './policy-store.js'

describe.each(backendSetKinds)('the policy store and audit log on the %s backends', (kind) => {
  let backends: Backends
  beforeAll(async () => {
    backends = await openBackendSet(await prepareBackendSet(kind, 'policy'), createTestClock().now)
  })
  afterAll(async () => {
    await backends?.close()
  })

  it('gives the restrictive default policy for a plugin nobody decided about', async () => {
    const policy = await createSqlPolicyStore(backends.database).get('newcomer')
    expect(policy).toMatchObject({ plugin: 'newcomer', status: 'pending_review', grants: [] })
  })

  it('stores, lists and deletes policies, stamped with when and by whom', async () => {
    const store = createSqlPolicyStore(backends.database)
    const stored = await store.put(
      {
        plugin: 'stats',
        status: 'approved',
        grants: [
          { type: 'db', access: ['read'], scope: ['stats_*'] },
          { type: 'http', scope: ['api.example.com'] },
        ],
        rate_limits: { calls_per_second: 7 },
      },
      { by: 'admin' },
    )
    expect(stored.updated_by).toBe('admin')
    const read = await store.get('stats')
    expect(read).toEqual(stored)
    expect(read.rate_limits.calls_per_second).toBe(7)
    await store.put({ plugin: 'alpha', status: 'blocked', grants: [] })
    expect((await store.list()).map((p) => p.plugin)).toEqual(['alpha', 'stats'])
    expect(await store.delete('alpha')).toBe(true)
    expect(await store.delete('alpha')).toBe(false)
    expect((await store.get('alpha')).status).toBe('pending_review')
  })

  it('refuses an invalid policy with every problem by field', async () => {
    const store = createSqlPolicyStore(backends.database)
    await expect(
      store.put({ plugin: 'stats', status: 'maybe', grants: [{ type: 'db', scope: [] }] }),
    ).rejects.toMatchObject({
      code: 'invalid_argument',
      fields: expect.arrayContaining([expect.objectContaining({ field: 'status' })]),
    })
    expect((await store.get('stats')).status).toBe('approved')
  })

  it('sees a change made through another store on the same database once its cache expires, or when asked for a fresh one', async () => {
    const clock = createTestClock()
    clock.freeze(1_000_000)
    const replicaA = createSqlPolicyStore(backends.database, { cacheMs: 1000, now: clock.now })
    const replicaB = createSqlPolicyStore(backends.database, { cacheMs: 1000, now: clock.now })
    await replicaA.put({ plugin: 'live', status: 'approved', grants: [] })
    expect((await replicaB.get('live')).status).toBe('approved')
    await replicaA.put({ plugin: 'live', status: 'blocked', grants: [] })
    expect((await replicaA.get('live')).status).toBe('blocked')
    expect((await replicaB.get('live')).status).toBe('approved')
    clock.freeze(1_001_001)
    expect((await replicaB.get('live')).status).toBe('blocked')
    // Asked for a fresh one (another replica says it stored one), it reads past its cache, and keeps it.
    await replicaA.put({ plugin: 'live', status: 'approved', grants: [] })
    expect((await replicaB.get('live')).status).toBe('blocked')
    expect((await replicaB.get('live', { fresh: true })).status).toBe('approved')
    expect((await replicaB.get('live')).status).toBe('approved')
  })

  it('does not keep a policy from a read that a write or a later read overtook', async () => {
    const slow = withHeldPolicyReads(backends.database)
    const replicaA = createSqlPolicyStore(backends.database, { cacheMs: 0 })
    const replicaB = createSqlPolicyStore(slow.database, { cacheMs: 60_000 })
    await replicaB.put({ plugin: 'overtaken', status: 'approved', grants: [] })
    // A read of approved answers after B's own write of blocked: blocked stays.
    let late = slow.holdNext()
    let reading = replicaB.get('overtaken')
    await late.read
    await replicaB.put({ plugin: 'overtaken', status: 'blocked', grants: [] })
    await late.release()
    expect((await reading).status).toBe('approved')
    expect((await replicaB.get('overtaken')).status).toBe('blocked')
    // A fresh read of blocked answers after a later fresh read of what A stored since: A's stays.
    late = slow.holdNext()
    reading = replicaB.get('overtaken', { fresh: true })
    await late.read
    await replicaA.put({ plugin: 'overtaken', status: 'restricted', grants: [] })
    expect((await replicaB.get('overtaken', { fresh: true })).status).toBe('restricted')
    await late.release()
    expect((await reading).status).toBe('blocked')
    expect((await replicaB.get('overtaken')).status).toBe('restricted')
  })

  it('keeps audit entries newest first, filtered by plugin, method and code', async () => {
    const audit = createSqlAuditLog(backends.database)
    await audit.record({
      at: 1,
      plugin: 'a',
      method: 'db.query',
      code: 'permission_denied',
      message: 'm1',
      chain: ['x'],
    })
    await audit.record({
      at: 2,
      plugin: 'a',
      method: 'cache.get',
      code: 'rate_limited',
      message: 'm2',
      token: 't',
    })
    await audit.record({ at: 3, plugin: 'b', method: 'db.query', code: 'permission_denied', message: 'm3' })
    expect((await audit.list({ plugin: 'a' })).map((e) => e.message)).toEqual(['m2', 'm1'])
    expect(await audit.list({ plugin: 'a', code: 'permission_denied' })).toEqual([
      { at: 1, plugin: 'a', method: 'db.query', code: 'permission_denied', message: 'm1', chain: ['x'] },
    ])
    expect((await audit.list({ method: 'db.query', limit: 1 })).map((e) => e.message)).toEqual(['m3'])
  })
})
