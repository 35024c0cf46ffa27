import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { PluginError, type ResourcePolicy } from '@corral/types'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type Backends, createBackends } from '../backends/create-backends.js'
import type { RateLimiter } from '../rate-limit/rate-limiter.js'
import { createTestClock } from '../testing/backend-sets.js'
import { FakeRunner } from '../testing/fake-runner.js'
import type { ManagerEvent, PluginManager, PluginManagerOptions } from './manager-api.js'
import { createPluginManager } from './plugin-manager.js'

const quiet = { log() {} }

/** Waits until `check` holds (a hang guard, not a timing assertion). */
async function until(check: () => boolean, limitMs = 5_000): Promise<void> {
  const start = Date.now()
  while (!check()) {
    if (Date.now() - start > limitMs) throw new Error('the condition never held')
    await sleep(5)
  }
}

function failure(
  promise: Promise<unknown>,
): Promise<{ code: string; message: string; retryAfterMs?: number }> {
  return promise.then(
    () => {
      throw new Error('expected a failure')
    },
    (error) => error,
  )
}

describe('createPluginManager (fake runners)', () => {
  let pluginsDir: string
  let backends: Backends
  let runner: FakeRunner
  let manager: PluginManager | undefined
  let events: ManagerEvent[]
  const clock = createTestClock()

  async function writePlugin(
    folder: string,
    fields: { name?: string; version?: string; extra?: string } = {},
  ) {
    const dir = path.join(pluginsDir, folder)
    await mkdir(dir, { recursive: true })
    await writeFile(path.join(dir, 'a.wasm'), '')
    await writeFile(
      path.join(dir, 'plugin.yaml'),
      `name: ${fields.name ?? folder}\nversion: ${fields.version ?? '1.0.0'}\nruntime: wasm\nentry: {wasm: a.wasm}\n${fields.extra ?? ''}`,
    )
  }

  /** The manager under test, over `pluginsDir` with the test runner, not started. */
  function create(options: Partial<PluginManagerOptions> = {}): PluginManager {
    const created = createPluginManager({
      pluginsDir,
      hostVersion: '1.0.0',
      backends,
      logger: quiet,
      runners: { wasm: runner },
      ...options,
    })
    manager = created
    created.events.subscribe((event) => events.push(event))
    return created
  }

  async function start(options: Partial<PluginManagerOptions> = {}): Promise<PluginManager> {
    const started = create(options)
    await started.start()
    return started
  }

  const approved = (plugin: string, extra: Partial<ResourcePolicy> = {}) =>
    ({ plugin, status: 'approved', grants: [], ...extra }) as ResourcePolicy

  const states = (plugin: string) =>
    events.flatMap((e) => (e.type === 'plugin.state' && e.plugin === plugin ? [e.to] : []))

  beforeEach(async () => {
    pluginsDir = await mkdtemp(path.join(tmpdir(), 'corral-manager-'))
    backends = await createBackends({ databaseUrl: '', redisUrl: '', now: clock.now })
    runner = new FakeRunner()
    events = []
  })

  afterEach(async () => {
    clock.unfreeze()
    await manager?.close()
    manager = undefined
    await backends.close()
    await rm(pluginsDir, { recursive: true, force: true })
  })

  it('loads every good plugin and reports a broken one and two folders declaring one name', async () => {
    await writePlugin('alpha')
    await writePlugin('broken', { version: 'not-semver' })
    await writePlugin('twin')
    await writePlugin('impostor', { name: 'twin' })
    const m = await start()
    const byName = Object.fromEntries(m.list().map((p) => [p.name, [p.state, p.lastError?.code]]))
    expect(byName).toEqual({
      alpha: ['running', undefined],
      broken: ['failed', 'manifest_invalid'],
      impostor: ['failed', 'already_exists'],
      twin: ['failed', 'already_exists'],
    })
    expect(m.get('twin')?.lastError?.message).toMatch(/also declared by impostor/)
    expect(m.get('alpha')?.history.map((t) => [t.from, t.to])).toEqual([
      ['discovered', 'loading'],
      ['loading', 'running'],
    ])
    expect(states('alpha')).toEqual(['loading', 'running'])
    expect(runner.loaded.map((p) => p.name)).toEqual(['alpha'])
  })

  it('counts calls, errors by code and latency, and shows calls in flight', async () => {
    await writePlugin('alpha')
    const m = await start()
    let release: (() => void) | undefined
    runner.handler = (fn) => {
      if (fn === 'fail') throw Object.assign(new Error('no'), { name: 'Error' })
      if (fn === 'wait') return new Promise((resolve) => (release = () => resolve('released')))
      return 'ok'
    }
    expect(await m.call<unknown, string>('alpha', 'greet', { name: 'Ada' })).toBe('ok')
    expect((await failure(m.call('alpha', 'fail'))).code).toBe('internal')
    const waiting = m.call('alpha', 'wait')
    await until(() => release !== undefined)
    expect(m.get('alpha')?.metrics.inFlight).toBe(1)
    release?.()
    expect(await waiting).toBe('released')
    const metrics = m.get('alpha')?.metrics
    expect(metrics).toMatchObject({ calls: 3, inFlight: 0, errors: { internal: 1 }, restarts: 0 })
    expect(metrics?.latencyMs.count).toBe(3)
    expect(metrics?.latencyMs.counts.reduce((a, b) => a + b, 0)).toBe(3)
    expect((await failure(m.call('nobody', 'greet'))).code).toBe('not_found')
  })

  it('refuses calls past the policy calls_per_second with a retry-after', async () => {
    await writePlugin('alpha')
    const m = await start({
      policies: [approved('alpha', { rate_limits: { calls_per_second: 2 } } as never)],
    })
    clock.freeze(Date.now() - (Date.now() % 1000) + 100)
    await m.call('alpha', 'one')
    await m.call('alpha', 'two')
    const refused = await failure(m.call('alpha', 'three'))
    expect(refused.code).toBe('rate_limited')
    expect(refused.retryAfterMs).toBeGreaterThan(0)
    expect(runner.latest('alpha').calls).toEqual(['one', 'two'])
    expect(m.get('alpha')?.metrics.errors).toEqual({ rate_limited: 1 })
  })

  it('counts calls refused because the plugin is blocked, quarantined, failed or stopped as errors', async () => {
    await writePlugin('alpha')
    await writePlugin('beta')
    runner.failLoad = (load) => load.manifest.name === 'beta'
    const m = await start({ policies: [approved('alpha')] })
    runner.latest('alpha').emitState('quarantined', 'restarted too often')
    expect((await failure(m.call('alpha', 'greet'))).code).toBe('unavailable')
    await m.setPolicy({ plugin: 'alpha', status: 'blocked', grants: [] })
    expect((await failure(m.call('alpha', 'greet'))).code).toBe('permission_denied')
    expect((await failure(m.call('beta', 'greet'))).code).toBe('unavailable')
    expect(m.get('alpha')?.metrics).toMatchObject({
      calls: 2,
      errors: { unavailable: 1, permission_denied: 1 },
    })
    expect(m.get('beta')?.metrics).toMatchObject({ calls: 1, errors: { unavailable: 1 } })
    expect(m.get('beta')?.lastError?.code).toBe('load_failed')
    await m.setPolicy(approved('alpha'))
    await m.close()
    expect((await failure(m.call('alpha', 'greet'))).code).toBe('unavailable')
    expect(m.get('alpha')?.state).toBe('stopped')
    expect(m.get('alpha')?.metrics.errors).toEqual({ unavailable: 2, permission_denied: 1 })
    expect(runner.latest('alpha').calls).toEqual([])
  })

  it('waits for a limiter that answers asynchronously (a shared store) and refuses past its limit', async () => {
    await writePlugin('alpha')
    const hits: string[] = []
    const shared: RateLimiter = {
      async hit(key, limit, windowMs) {
        hits.push(key)
        await sleep(1)
        return backends.rateLimiter.hit(key, limit, windowMs)
      },
      close: async () => {},
    }
    const m = await start({
      backends: { ...backends, rateLimiter: shared },
      policies: [approved('alpha', { rate_limits: { calls_per_second: 1 } } as never)],
    })
    clock.freeze(Date.now() - (Date.now() % 1000) + 100)
    await m.call('alpha', 'one')
    const refused = await failure(m.call('alpha', 'two'))
    expect(refused.code).toBe('rate_limited')
    expect(hits).toEqual(['alpha:calls-in', 'alpha:calls-in'])
    expect(runner.latest('alpha').calls).toEqual(['one'])
    expect(m.get('alpha')?.metrics).toMatchObject({ calls: 2, inFlight: 0, errors: { rate_limited: 1 } })
  })

  it('counts a call that fails before it returns a promise as settled, not in flight', async () => {
    await writePlugin('alpha')
    const m = await start()
    const plugin = runner.latest('alpha')
    plugin.call = () => {
      throw new Error('thrown, not rejected')
    }
    expect((await failure(m.call('alpha', 'greet'))).code).toBe('internal')
    expect(m.get('alpha')?.metrics).toMatchObject({ calls: 1, inFlight: 0, errors: { internal: 1 } })
  })

  it('hands a running plugin its narrowed limits live, without a reload', async () => {
    await writePlugin('alpha')
    const m = await start({ policies: [approved('alpha')] })
    const plugin = runner.latest('alpha')
    await m.setPolicy({
      plugin: 'alpha',
      status: 'restricted',
      grants: [],
      limits: { call_timeout: '100ms' },
    })
    expect(plugin.grants.at(-1)?.limits.call_timeout).toBe(100)
    expect(m.get('alpha')?.grant?.limits.call_timeout).toBe(100)
    expect(runner.loaded).toHaveLength(1)
    expect(m.get('alpha')?.history.at(-1)).toMatchObject({ from: 'running', to: 'running' })
  })

  it('stops a plugin its policy blocks, refuses its calls, and loads it again once unblocked', async () => {
    await writePlugin('alpha')
    const m = await start({ policies: [approved('alpha')] })
    const first = runner.latest('alpha')
    await m.setPolicy({ plugin: 'alpha', status: 'blocked', grants: [] })
    expect(first.shutDown).toBe(true)
    expect(m.get('alpha')?.state).toBe('blocked')
    expect((await failure(m.call('alpha', 'greet'))).code).toBe('permission_denied')
    await m.setPolicy({ plugin: 'alpha', status: 'approved', grants: [] })
    expect(m.get('alpha')?.state).toBe('running')
    expect(runner.latest('alpha')).not.toBe(first)
    expect(await m.call('alpha', 'greet')).toEqual({ fn: 'greet', args: undefined })
    expect(states('alpha')).toEqual(['loading', 'running', 'stopping', 'blocked', 'loading', 'running'])
  })

  it('loads a plugin that failed to init again once a policy grants what it needs', async () => {
    await writePlugin('alpha', { extra: 'resources:\n  permissions: [{type: cache, scope: ["a:*"]}]\n' })
    runner.failLoad = (load) => load.grant.permissions.length === 0
    const m = await start()
    expect(m.get('alpha')?.state).toBe('failed')
    await m.setPolicy({ plugin: 'alpha', status: 'approved', grants: [{ type: 'cache', scope: ['*'] }] })
    expect(m.get('alpha')?.state).toBe('running')
    expect(runner.latest('alpha').load.grant.permissions).toHaveLength(1)
    expect(states('alpha')).toEqual(['loading', 'failed', 'loading', 'running'])
  })

  it('leaves a plugin that failed at discovery failed when a policy is set for it', async () => {
    await writePlugin('broken', { version: 'not-semver' })
    const m = await start()
    await m.setPolicy(approved('broken'))
    expect(m.get('broken')?.state).toBe('failed')
    expect(runner.loaded).toHaveLength(0)
  })

  it('leaves a plugin blocked at start unloaded', async () => {
    await writePlugin('alpha')
    const m = await start({ policies: [{ plugin: 'alpha', status: 'blocked', grants: [] } as never] })
    expect(m.get('alpha')?.state).toBe('blocked')
    expect(runner.loaded).toHaveLength(0)
  })

  it('loads an approved pending plugin again with its new grant, then stops the old one', async () => {
    await writePlugin('alpha', { extra: 'resources:\n  permissions: [{type: cache, scope: ["a:*"]}]\n' })
    const m = await start()
    const pending = runner.latest('alpha')
    expect(pending.load.grant.permissions).toEqual([])
    await m.setPolicy({ plugin: 'alpha', status: 'approved', grants: [{ type: 'cache', scope: ['*'] }] })
    const approvedOne = runner.latest('alpha')
    expect(approvedOne).not.toBe(pending)
    expect(approvedOne.load.grant.permissions).toEqual([
      { type: 'cache', access: ['read', 'write'], scope: ['a:*'] },
    ])
    expect(approvedOne.inits).toHaveLength(1)
    expect(pending.shutDown).toBe(true)
    expect(runner.log).toEqual([
      'load alpha@1.0.0',
      'init alpha@1.0.0',
      'load alpha@1.0.0',
      'init alpha@1.0.0',
      'shutdown alpha@1.0.0',
    ])
  })

  it('reloads beside the running version: new calls go to the new one, the old drains, then stops', async () => {
    await writePlugin('alpha')
    const m = await start()
    const old = runner.latest('alpha')
    let release: (() => void) | undefined
    runner.handler = (fn) =>
      fn === 'slow' ? new Promise((resolve) => (release = () => resolve('old done'))) : 'ok'
    const slow = m.call('alpha', 'slow')
    await until(() => release !== undefined)
    await writePlugin('alpha', { version: '1.0.1' })
    const reloading = m.reload('alpha')
    await until(() => m.get('alpha')?.version === '1.0.1')
    expect(await m.call('alpha', 'fast')).toBe('ok')
    expect(runner.latest('alpha').calls).toEqual(['fast'])
    expect(old.shutDown).toBe(false)
    expect(m.get('alpha')?.metrics.inFlight).toBe(1)
    release?.()
    expect(await slow).toBe('old done')
    expect((await reloading).state).toBe('running')
    expect(old.shutDown).toBe(true)
    expect(runner.log.slice(2)).toEqual(['load alpha@1.0.1', 'init alpha@1.0.1', 'shutdown alpha@1.0.0'])
    expect(m.get('alpha')?.history.at(-1)).toMatchObject({
      from: 'running',
      to: 'running',
      reason: /1\.0\.0 → 1\.0\.1/,
    })
  })

  it('keeps the running version when the new one fails to load, and reports the failure', async () => {
    await writePlugin('alpha')
    const m = await start()
    runner.failLoad = ({ manifest }) => manifest.version === '2.0.0'
    await writePlugin('alpha', { version: '2.0.0' })
    expect((await failure(m.reload('alpha'))).code).toBe('load_failed')
    const info = m.get('alpha')
    expect(info).toMatchObject({ state: 'running', version: '1.0.0', lastError: { code: 'load_failed' } })
    expect(info?.history.at(-1)?.reason).toMatch(/reload failed.*keeps serving/)
    const last = events.at(-1)
    expect(last).toMatchObject({ type: 'plugin.state', plugin: 'alpha', from: 'running', to: 'running' })
    expect(await m.call('alpha', 'greet')).toEqual({ fn: 'greet', args: undefined })
    expect(runner.latest('alpha').shutDown).toBe(false)
  })

  it('loads a failed plugin on reload once its folder is fixed, and keeps it failed until then', async () => {
    await writePlugin('alpha', { version: 'broken' })
    const m = await start()
    expect(m.get('alpha')?.state).toBe('failed')
    expect((await failure(m.reload('alpha'))).code).toBe('manifest_invalid')
    expect(m.get('alpha')?.state).toBe('failed')
    await writePlugin('alpha')
    expect((await m.reload('alpha')).state).toBe('running')
    expect(states('alpha')).toEqual(['failed', 'failed', 'loading', 'running'])
  })

  it('reloads a plugin whose folder changed on disk (watcher, debounced)', async () => {
    await writePlugin('alpha')
    const m = await start({ watch: { debounceMs: 50 } })
    await writePlugin('alpha', { version: '1.1.0' })
    await until(() => m.get('alpha')?.version === '1.1.0')
    expect(runner.loaded.map((p) => p.version)).toEqual(['1.0.0', '1.1.0'])
    await until(() => runner.loaded[0]?.shutDown === true)
  })

  it('loads a folder added to the plugins folder, and does not bring back one unloaded by hand', async () => {
    await writePlugin('alpha')
    const m = await start({ watch: { debounceMs: 50 } })
    await writePlugin('beta')
    await until(() => m.get('beta')?.state === 'running')
    await m.unload('alpha')
    await writePlugin('alpha', { version: '1.2.0' })
    await writePlugin('beta', { version: '1.2.0' })
    await until(() => m.get('beta')?.version === '1.2.0')
    // Both changes were seen (debounced alike); only the unloaded plugin stays away.
    await sleep(200)
    expect(m.get('alpha')).toBeUndefined()
    expect(runner.loaded.filter((p) => p.name === 'alpha')).toHaveLength(1)
  })

  it('follows crash restarts and quarantine of the runtime, and lifts it with reset', async () => {
    await writePlugin('alpha')
    const m = await start()
    const plugin = runner.latest('alpha')
    plugin.emitState('restarting', 'the process exited with code 3')
    expect(m.get('alpha')?.state).toBe('degraded')
    plugin.emitState('running', 'restarted')
    plugin.emitState('restarting', 'the process exited with code 3')
    plugin.emitState('quarantined', '5 restarts within 60000 ms')
    expect(m.get('alpha')?.state).toBe('quarantined')
    expect((await failure(m.call('alpha', 'greet'))).code).toBe('unavailable')
    await m.reset('alpha')
    expect(plugin.resets).toBe(1)
    expect(m.get('alpha')?.state).toBe('running')
    expect(m.get('alpha')?.metrics.restarts).toBe(3)
    expect(states('alpha')).toEqual([
      'loading',
      'running',
      'degraded',
      'running',
      'degraded',
      'quarantined',
      'degraded',
      'running',
    ])
  })

  it('keeps a failed call out of lastError, and clears lastError once the plugin runs again', async () => {
    await writePlugin('alpha')
    runner.failLoad = () => true
    const m = await start()
    expect(m.get('alpha')).toMatchObject({ state: 'failed', lastError: { code: 'load_failed' } })
    expect(m.get('alpha')?.health).toMatchObject({ ready: false })
    runner.failLoad = () => false
    await m.reload('alpha')
    expect(m.get('alpha')?.state).toBe('running')
    expect(m.get('alpha')?.lastError).toBeUndefined()

    runner.handler = () => {
      throw new PluginError('invalid_argument', 'name is required', { plugin: 'alpha' })
    }
    expect((await failure(m.call('alpha', 'greet'))).code).toBe('invalid_argument')
    expect(m.get('alpha')?.lastError).toBeUndefined()
    expect(m.get('alpha')?.metrics.errors).toEqual({ invalid_argument: 1 })

    const plugin = runner.latest('alpha')
    plugin.emitState('quarantined', '5 restarts within 60000 ms')
    expect(m.get('alpha')?.lastError?.message).toMatch(/quarantined: 5 restarts/)
    await m.reset('alpha')
    expect(m.get('alpha')?.lastError).toBeUndefined()
  })

  it('reports a blocked plugin not ready, whatever it answered while it ran', async () => {
    await writePlugin('alpha')
    const m = await start({ policies: [approved('alpha')] })
    await m.setPolicy({ plugin: 'alpha', status: 'blocked', grants: [] })
    expect(m.get('alpha')).toMatchObject({
      state: 'blocked',
      health: { ready: false, message: 'the plugin is blocked' },
    })
  })

  it('keeps state history in the database across managers', async () => {
    await writePlugin('alpha')
    await (await start()).close()
    const second = await start()
    expect(second.get('alpha')?.history.map((t) => t.to)).toEqual([
      'loading',
      'running',
      'stopping',
      'stopped',
      'loading',
      'running',
    ])
  })

  it('seeds policies only for plugins that have none stored', async () => {
    await writePlugin('alpha')
    await writePlugin('beta')
    const first = await start({ policies: [approved('alpha')] })
    await first.setPolicy({ plugin: 'alpha', status: 'restricted', grants: [] })
    await first.close()
    const second = await start({ policies: [approved('alpha'), approved('beta')] })
    expect(second.get('alpha')?.policy?.status).toBe('restricted')
    expect(second.get('beta')?.policy?.status).toBe('approved')
  })

  it('stops plugins in reverse load order on close and refuses calls after', async () => {
    await writePlugin('alpha')
    await writePlugin('beta')
    const m = await start()
    await m.close()
    expect(runner.log.filter((line) => line.startsWith('shutdown'))).toEqual([
      'shutdown beta@1.0.0',
      'shutdown alpha@1.0.0',
    ])
    expect((await failure(m.call('alpha', 'greet'))).code).toBe('unavailable')
    expect(m.get('alpha')?.state).toBe('stopped')
    // Runners the host passed in are the host's to close.
    expect(runner.closed).toBe(false)
  })

  it('runs a reload, unload or load asked during its start after the start, which it would meet half-way', async () => {
    for (const name of ['alpha', 'beta', 'gamma', 'delta']) await writePlugin(name)
    let open!: () => void
    const gate = new Promise<void>((resolve) => {
      open = resolve
    })
    const load = runner.load.bind(runner)
    runner.load = async (options) => {
      if (options.manifest.name === 'alpha') await gate
      return load(options)
    }
    const m = create({ policies: ['alpha', 'beta', 'gamma', 'delta'].map((plugin) => approved(plugin)) })
    const starting = m.start()
    while (m.get('alpha')?.state !== 'loading') await sleep(5)
    // Before the fix: the reload loaded beta, then the start failed loading it again; gamma, unloaded
    // before the start reached it, was loaded anyway and left running out of the list.
    const asked = [m.reload('beta'), m.unload('gamma'), m.load(path.join(pluginsDir, 'delta'))]
    open()
    await starting
    await Promise.allSettled(asked)
    expect(m.list().map((p) => [p.name, p.state])).toEqual([
      ['alpha', 'running'],
      ['beta', 'running'],
      ['delta', 'running'],
    ])
    const live = runner.loaded.filter((plugin) => !plugin.shutDown).map((plugin) => plugin.name)
    expect(live.sort()).toEqual(['alpha', 'beta', 'delta'])
  })

  it('unloads a plugin and forgets it, and loads a folder named later', async () => {
    await writePlugin('alpha')
    const m = await start()
    await m.unload('alpha')
    expect(m.get('alpha')).toBeUndefined()
    expect(runner.latest('alpha').shutDown).toBe(true)
    const info = await m.load(path.join(pluginsDir, 'alpha'))
    expect(info.state).toBe('running')
    await expect(m.load(path.join(pluginsDir, 'alpha'))).rejects.toMatchObject({ code: 'already_exists' })
  })
})
