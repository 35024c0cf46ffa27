import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { isDeepStrictEqual } from 'node:util'
import { eventually } from '@corral/grpc-runner/testing'
import { parsePolicy } from '@corral/manifest'
import type { ResourcePolicy } from '@corral/types'
import { afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from 'vitest'
import { type Backends, createBackends } from '../backends/create-backends.js'
import { createSqlPolicyStore } from '../policy-store/policy-store.js'
import { FakeRunner } from '../testing/fake-runner.js'
import { type HeldPolicyRead, withHeldPolicyReads } from '../testing/held-policy-reads.js'
import type { PluginManager } from './manager-api.js'
import { createPluginManager } from './plugin-manager.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Two replicas (`a`, `b`) over one SQLite database and one bus, both running plugin `alpha`
 * approved, store policies and apply them: each ends on the policy the store holds. Their looks
 * for stored policies (every 2 s) are held (a fake `setInterval`), and run by hand where a test
 * says so. `b` reads through a connection whose next policy read a test can hold back (a slow
 * pooled connection).
 */
describe('policies across replicas (fake runners, one database and bus)', () => {
  let pluginsDir: string
  let backends: Backends
  let holdNextReadOnB: () => HeldPolicyRead
  /** `Date.now`, which the replicas' policy stores stamp `updated_at` with: spied on before they keep it. */
  let clock: MockInstance<() => number>
  let a: PluginManager
  let b: PluginManager

  beforeEach(async () => {
    pluginsDir = await mkdtemp(path.join(tmpdir(), 'corral-replica-policies-'))
    const dir = path.join(pluginsDir, 'alpha')
    await mkdir(dir, { recursive: true })
    await writeFile(path.join(dir, 'a.wasm'), '')
    await writeFile(
      path.join(dir, 'plugin.yaml'),
      'name: alpha\nversion: 1.0.0\nruntime: wasm\nentry: {wasm: a.wasm}\n',
    )
    backends = await createBackends({ databaseUrl: '', redisUrl: '' })
    const slow = withHeldPolicyReads(backends.database)
    holdNextReadOnB = slow.holdNext
    clock = vi.spyOn(Date, 'now')
    vi.useFakeTimers({ toFake: ['setInterval'] })
    const replica = (id: string, database: typeof backends.database) =>
      createPluginManager({
        pluginsDir,
        hostVersion: '1.0.0',
        backends: { ...backends, database },
        replicaId: id,
        logger: { log() {} },
        runners: { wasm: new FakeRunner() },
        policies: [parsePolicy({ plugin: 'alpha', status: 'approved', grants: [] })],
      })
    a = replica('a', backends.database)
    b = replica('b', slow.database)
    await a.start()
    await b.start()
    expect([a.get('alpha')?.state, b.get('alpha')?.state]).toEqual(['running', 'running'])
  })
  afterEach(async () => {
    vi.useRealTimers()
    clock.mockRestore()
    await a.close()
    await b.close()
    await backends.close()
    await rm(pluginsDir, { recursive: true, force: true })
  })

  /** The policy the store holds now. */
  const stored = () => a.policies.get('alpha', { fresh: true })

  /** Whether both replicas have applied `policy`, and run or block by it. */
  function bothApplied(policy: ResourcePolicy): () => boolean {
    const state = policy.status === 'blocked' ? 'blocked' : 'running'
    return () =>
      [a, b].every((replica) => {
        const info = replica.get('alpha')
        return isDeepStrictEqual(info?.policy, policy) && info?.state === state
      })
  }

  it('ends on the newer of two policies when its read of the older one answers late', async () => {
    const late = holdNextReadOnB()
    await a.setPolicy({ plugin: 'alpha', status: 'restricted', grants: [] })
    await late.read
    await a.setPolicy({ plugin: 'alpha', status: 'blocked', grants: [] })
    // Time for b to take the second command, and to apply it were it not waiting for the first.
    await sleep(100)
    await late.release()
    const newer = await stored()
    expect(newer.status).toBe('blocked')
    await eventually(bothApplied(newer), 5_000, 'both replicas on the stored policy')
  })

  it('converges when two replicas store different policies in the same millisecond', async () => {
    // Each put takes its stamp as it starts: both read the same millisecond.
    const at = Date.now()
    clock.mockReturnValueOnce(at).mockReturnValueOnce(at)
    const [mine, theirs] = await Promise.all([
      a.setPolicy({ plugin: 'alpha', status: 'restricted', grants: [] }),
      b.setPolicy({ plugin: 'alpha', status: 'blocked', grants: [] }),
    ])
    expect(mine.updated_at).toBe(theirs.updated_at)
    await eventually(bothApplied(await stored()), 5_000, 'both replicas on the stored policy')
  })

  it('finds at its next look a policy stored in the millisecond of the applied one, its command lost', async () => {
    const applied = await a.setPolicy({ plugin: 'alpha', status: 'restricted', grants: [] })
    await eventually(bothApplied(await stored()), 5_000, 'both replicas on the applied policy')
    // Another replica stores a policy in that same millisecond; its command reaches no one.
    const sameMillisecond = createSqlPolicyStore(backends.database, {
      now: () => Date.parse(applied.updated_at ?? ''),
    })
    const blocked = await sameMillisecond.put({ plugin: 'alpha', status: 'blocked', grants: [] })
    expect(blocked.updated_at).toBe(applied.updated_at)
    // Once the replicas' stores keep the applied one no more (1 s), their next look finds it.
    await sleep(1_050)
    vi.advanceTimersByTime(2_000)
    await eventually(bothApplied(await stored()), 5_000, 'both replicas on the stored policy')
  })
})
