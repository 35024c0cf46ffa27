import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { eventually } from '@corral/grpc-runner/testing'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { type Backends, createBackends } from '../backends/create-backends.js'
import { FakeRunner } from '../testing/fake-runner.js'
import type { PluginManager } from './manager-api.js'
import { createPluginManager } from './plugin-manager.js'

/**
 * Two replicas (`a`, `b`) over one plugins folder and one set of backends: an administrator's
 * load, unload, reload and reset on `a` run on `b` too. The cross-process path (PostgreSQL, Redis,
 * real plugins) is in the host's replica tests; here fake runners show what each replica did.
 */
describe('plugin commands across replicas (fake runners, one bus)', () => {
  let pluginsDir: string
  let backends: Backends
  const runners = { a: new FakeRunner(), b: new FakeRunner() }
  /** The warnings each replica logged. */
  const warnings = { a: [] as string[], b: [] as string[] }
  let a: PluginManager
  let b: PluginManager

  async function writePlugin(name: string, version = '1.0.0'): Promise<string> {
    const dir = path.join(pluginsDir, name)
    await mkdir(dir, { recursive: true })
    await writeFile(path.join(dir, 'a.wasm'), '')
    await writeFile(
      path.join(dir, 'plugin.yaml'),
      `name: ${name}\nversion: ${version}\nruntime: wasm\nentry: {wasm: a.wasm}\n`,
    )
    return dir
  }

  function replica(id: 'a' | 'b'): PluginManager {
    return createPluginManager({
      pluginsDir,
      hostVersion: '1.0.0',
      backends,
      replicaId: id,
      logger: { log: (level, message) => level === 'warn' && warnings[id].push(message) },
      runners: { wasm: runners[id] },
    })
  }

  beforeEach(async () => {
    pluginsDir = await mkdtemp(path.join(tmpdir(), 'corral-replicas-'))
    backends = await createBackends({ databaseUrl: '', redisUrl: '' })
    runners.a = new FakeRunner()
    runners.b = new FakeRunner()
    warnings.a = []
    warnings.b = []
    await writePlugin('alpha')
    a = replica('a')
    b = replica('b')
    await a.start()
    await b.start()
  })
  afterEach(async () => {
    await a.close()
    await b.close()
    await backends.close()
    await rm(pluginsDir, { recursive: true, force: true })
  })

  const loads = (runner: FakeRunner, name: string) => runner.loaded.filter((p) => p.name === name).length

  it('reloads on every replica, each once: the sender does not run its own command again', async () => {
    await writePlugin('alpha', '2.0.0')
    expect(await a.reload('alpha')).toMatchObject({ version: '2.0.0' })
    await eventually(() => b.get('alpha')?.version === '2.0.0', 5_000, 'the reload on b')
    expect(b.get('alpha')?.history.at(-1)?.reason).toBe('reloaded on replica a: 1.0.0 → 2.0.0')
    expect([loads(runners.a, 'alpha'), loads(runners.b, 'alpha')]).toEqual([2, 2])
  })

  it('keeps the old version where the reload fails, in that replica’s history and log', async () => {
    runners.b.failLoad = () => true
    await writePlugin('alpha', '2.0.0')
    expect(await a.reload('alpha')).toMatchObject({ version: '2.0.0', state: 'running' })
    const logged = 'reload sent by replica a failed on this one'
    await eventually(() => warnings.b.includes(logged), 5_000, 'the failure logged on b')
    expect(b.get('alpha')).toMatchObject({
      version: '1.0.0',
      state: 'running',
      lastError: { code: 'load_failed' },
    })
    expect(b.get('alpha')?.history.at(-1)?.reason).toMatch(
      /^reload failed, the running version keeps serving/,
    )
  })

  it('loads and unloads on every replica', async () => {
    const beta = await writePlugin('beta')
    expect(await a.load(beta)).toMatchObject({ name: 'beta', state: 'running' })
    await eventually(() => b.get('beta')?.state === 'running', 5_000, 'beta loaded on b')
    await a.unload('beta')
    await eventually(() => b.get('beta') === undefined, 5_000, 'beta unloaded on b')
    expect(runners.b.latest('beta').shutDown).toBe(true)
  })

  it('lifts a quarantine on every replica', async () => {
    for (const runner of Object.values(runners)) runner.latest('alpha').emitState('quarantined', 'crashed')
    expect(b.get('alpha')?.state).toBe('quarantined')
    await a.reset('alpha')
    await eventually(() => b.get('alpha')?.state === 'running', 5_000, 'the quarantine lifted on b')
    expect([runners.a.latest('alpha').resets, runners.b.latest('alpha').resets]).toEqual([1, 1])
  })

  it('applies a policy stored on one replica on the others at once, not at their next look for it', async () => {
    // c's own look for stored policies (every 2 s) is held: only a's command can reach it.
    vi.useFakeTimers({ toFake: ['setInterval'] })
    const runner = new FakeRunner()
    const c = createPluginManager({
      pluginsDir,
      hostVersion: '1.0.0',
      backends,
      replicaId: 'c',
      logger: { log() {} },
      runners: { wasm: runner },
    })
    try {
      await c.start()
    } finally {
      vi.useRealTimers()
    }
    try {
      expect(c.get('alpha')?.state).toBe('running')
      await a.setPolicy({ plugin: 'alpha', status: 'blocked', grants: [] })
      await eventually(() => c.get('alpha')?.state === 'blocked', 5_000, 'alpha blocked on c')
      expect(runner.latest('alpha').shutDown).toBe(true)
      await eventually(() => b.get('alpha')?.state === 'blocked', 5_000, 'alpha blocked on b')
      expect(a.get('alpha')?.state).toBe('blocked')
    } finally {
      await c.close()
    }
  })

  it('shows a load that fails on another replica in its state, and logs it there', async () => {
    runners.b.failLoad = (options) => options.manifest.name === 'beta'
    expect(await a.load(await writePlugin('beta'))).toMatchObject({ state: 'running' })
    const logged = 'load sent by replica a failed on this one'
    await eventually(() => warnings.b.includes(logged), 5_000, 'the failure logged on b')
    expect(b.get('beta')).toMatchObject({ state: 'failed', lastError: { code: 'load_failed' } })
  })
})
