import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Backends } from '../backends/create-backends.js'
import {
  backendSetKinds,
  createTestClock,
  openBackendSet,
  prepareBackendSet,
} from '../testing/backend-sets.js'
import { createSqlStateHistoryStore } from './state-history-store.js'

describe.each(backendSetKinds)('the state history store on the %s backends', (kind) => {
  let backends: Backends
  beforeAll(async () => {
    backends = await openBackendSet(await prepareBackendSet(kind, 'states'), createTestClock().now)
  })
  afterAll(async () => {
    await backends?.close()
  })

  it('keeps each plugin its newest transitions, oldest first, apart from the others', async () => {
    const store = createSqlStateHistoryStore(backends.database, { keep: 3 })
    const reasons = ['one', 'two', 'three', 'four']
    for (const [i, reason] of reasons.entries()) {
      await store.append('alpha', { at: 1000 + i, from: 'running', to: 'degraded', reason })
    }
    await store.append('beta', { at: 5, from: 'discovered', to: 'failed', reason: 'broken' })
    expect(await store.list('alpha', 10)).toEqual([
      { at: 1001, from: 'running', to: 'degraded', reason: 'two' },
      { at: 1002, from: 'running', to: 'degraded', reason: 'three' },
      { at: 1003, from: 'running', to: 'degraded', reason: 'four' },
    ])
    expect((await store.list('alpha', 1)).map((t) => t.reason)).toEqual(['four'])
    expect(await store.list('beta', 10)).toEqual([
      { at: 5, from: 'discovered', to: 'failed', reason: 'broken' },
    ])
    expect(await store.list('nobody', 10)).toEqual([])
  })

  it('reads what another store on the same database wrote (a restarted host)', async () => {
    await createSqlStateHistoryStore(backends.database, { keep: 5 }).append('gamma', {
      at: 42,
      from: 'loading',
      to: 'running',
      reason: "it's up",
    })
    const again = createSqlStateHistoryStore(backends.database, { keep: 5 })
    expect(await again.list('gamma', 5)).toEqual([
      { at: 42, from: 'loading', to: 'running', reason: "it's up" },
    ])
  })
})
