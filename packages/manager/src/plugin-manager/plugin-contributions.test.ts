import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { CallOptions, GroupSpec, Logger } from '@corral/types'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type Backends, createBackends } from '../backends/create-backends.js'
import { FakeRunner } from '../testing/fake-runner.js'
import type { ManagerEvent, PluginManager, PluginManagerOptions } from './manager-api.js'
import { createPluginManager } from './plugin-manager.js'

function failure(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  return promise.then(
    () => {
      throw new Error('expected a failure')
    },
    (error) => error,
  )
}

/** A plugin that provides a route, a job (never due by itself), a group and an i18n namespace. */
const provides = (namespace = 'alpha', route = '/hello') => `provides:
  routes: [{method: GET, path: "${route}", handler: hello}]
  jobs: [{id: tick, cron: "0 0 1 1 *", handler: tick, timeout: 200}]
  groups: [{name: reporters}]
  i18n: {namespace: ${namespace}, languages: [en], translations: {en: {title: Title}}}
`

describe('createPluginManager: registries, jobs and groups follow the plugins (fake runners)', () => {
  let pluginsDir: string
  let backends: Backends
  let runner: FakeRunner
  let manager: PluginManager | undefined
  let events: ManagerEvent[]
  let logged: Array<{ level: string; message: string; fields?: Record<string, unknown> }>
  const logger: Logger = {
    log: (level, message, fields) => logged.push({ level, message, fields }),
  }

  async function writePlugin(folder: string, fields: { version?: string; extra?: string } = {}) {
    const dir = path.join(pluginsDir, folder)
    await mkdir(dir, { recursive: true })
    await writeFile(path.join(dir, 'a.wasm'), '')
    await writeFile(
      path.join(dir, 'plugin.yaml'),
      `name: ${folder}\nversion: ${fields.version ?? '1.0.0'}\nruntime: wasm\nentry: {wasm: a.wasm}\n${fields.extra ?? ''}`,
    )
  }

  async function start(options: Partial<PluginManagerOptions> = {}): Promise<PluginManager> {
    manager = createPluginManager({
      pluginsDir,
      hostVersion: '1.0.0',
      backends,
      logger,
      runners: { wasm: runner },
      ...options,
    })
    manager.events.subscribe((event) => events.push(event))
    await manager.start()
    return manager
  }

  const registryChanges = () => events.flatMap((e) => (e.type === 'registry.changed' ? [e.plugin] : []))

  beforeEach(async () => {
    pluginsDir = await mkdtemp(path.join(tmpdir(), 'corral-contributions-'))
    backends = await createBackends({ databaseUrl: '', redisUrl: '' })
    runner = new FakeRunner()
    events = []
    logged = []
  })

  afterEach(async () => {
    await manager?.close()
    manager = undefined
    await backends.close()
    await rm(pluginsDir, { recursive: true, force: true })
  })

  it('mounts a running plugin’s entries and drops them when it is unloaded', async () => {
    await writePlugin('alpha', { extra: provides() })
    const m = await start()
    expect(m.registries.matchRoute('GET', '/plugins/alpha/hello')?.route).toMatchObject({
      plugin: 'alpha',
      handler: 'hello',
    })
    expect(m.registries.translate('alpha', 'title', 'en')).toBe('Title')
    expect(registryChanges()).toEqual(['alpha'])
    await m.unload('alpha')
    expect(m.registries.routes()).toEqual([])
    expect(m.registries.translate('alpha', 'title', 'en')).toBeUndefined()
    expect(registryChanges()).toEqual(['alpha', 'alpha'])
  })

  it('drops a blocked plugin’s entries, keeps a quarantined one’s, and mounts them again once unblocked', async () => {
    await writePlugin('alpha', { extra: provides() })
    const m = await start()
    runner.latest('alpha').emitState('quarantined', '5 restarts within 60000 ms')
    expect(m.get('alpha')?.state).toBe('quarantined')
    expect(m.registries.routes()).toHaveLength(1)
    expect(m.jobs.list()).toHaveLength(1)
    await m.setPolicy({ plugin: 'alpha', status: 'blocked', grants: [] })
    expect(m.registries.routes()).toEqual([])
    expect(m.jobs.list()).toEqual([])
    await m.setPolicy({ plugin: 'alpha', status: 'approved', grants: [] })
    expect(m.registries.routes().map((r) => r.fullPath)).toEqual(['/plugins/alpha/hello'])
    expect(m.jobs.list().map((j) => j.id)).toEqual(['tick'])
  })

  it('refuses the second plugin whose entries conflict, naming both, and leaves the first serving', async () => {
    await writePlugin('alpha', { extra: provides('shared') })
    await writePlugin('beta', { extra: provides('shared') })
    const m = await start()
    expect(m.get('alpha')?.state).toBe('running')
    const beta = m.get('beta')
    expect(beta?.state).toBe('failed')
    expect(beta?.lastError?.code).toBe('already_exists')
    expect(beta?.lastError?.message).toMatch(/beta.*shared.*alpha/)
    expect(runner.latest('beta').shutDown).toBe(true)
    expect(m.registries.routes().map((r) => r.plugin)).toEqual(['alpha'])
    expect(m.registries.translate('shared', 'title', 'en')).toBe('Title')
    expect(await m.call('alpha', 'greet')).toEqual({ fn: 'greet', args: undefined })
    expect(registryChanges()).toEqual(['alpha'])
  })

  it('swaps the entries with the version on reload, and keeps the old ones when the new conflict', async () => {
    await writePlugin('alpha', { extra: provides('alpha', '/v1') })
    await writePlugin('beta', { extra: provides('beta') })
    const m = await start()
    await writePlugin('alpha', { version: '1.1.0', extra: provides('alpha', '/v2') })
    await m.reload('alpha')
    expect(m.registries.routes().map((r) => r.fullPath)).toEqual(['/plugins/alpha/v2', '/plugins/beta/hello'])
    await writePlugin('alpha', { version: '1.2.0', extra: provides('beta', '/v3') })
    const refused = await failure(m.reload('alpha'))
    expect(refused.code).toBe('already_exists')
    // Both are named; the registries check in load order, so the earlier-loaded one is named first.
    expect(refused.message).toMatch(/beta.*namespace beta.*alpha/)
    expect(m.get('alpha')).toMatchObject({ state: 'running', version: '1.1.0' })
    expect(m.registries.matchRoute('GET', '/plugins/alpha/v2')?.route.plugin).toBe('alpha')
    expect(runner.latest('alpha').version).toBe('1.2.0')
    expect(runner.latest('alpha').shutDown).toBe(true)
    expect(await m.call('alpha', 'greet')).toEqual({ fn: 'greet', args: undefined })
  })

  it('reports an error code a plugin did not declare through the logger', async () => {
    await writePlugin('alpha', { extra: provides() })
    const m = await start()
    expect(m.registries.errorFor('alpha', 'surprise').http_status).toBe(500)
    expect(logged).toContainEqual(
      expect.objectContaining({ level: 'warn', message: expect.stringMatching(/surprise/) }),
    )
  })

  it('runs a plugin’s jobs through manager calls, with the job’s timeout, as job.result events', async () => {
    await writePlugin('alpha', { extra: provides() })
    const seen: CallOptions[] = []
    runner.handler = (fn, _args, options) => {
      seen.push(options)
      return fn === 'tick' ? 'ticked' : 'other'
    }
    const m = await start()
    expect(m.jobs.list()).toMatchObject([{ plugin: 'alpha', id: 'tick', timeoutMs: 200, enabled: true }])
    const run = await m.jobs.runNow('alpha', 'tick')
    expect(run.ok).toBe(true)
    expect(runner.latest('alpha').calls).toEqual(['tick'])
    expect(seen[0]?.timeoutMs).toBe(200)
    expect(seen[0]?.signal).toBeDefined()
    expect(m.get('alpha')?.metrics.calls).toBe(1)
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'job.result', plugin: 'alpha', job: 'tick', ok: true }),
    )
    await m.unload('alpha')
    expect(m.jobs.list()).toEqual([])
  })

  it('caps a job’s timeout by a call timeout narrowed live', async () => {
    await writePlugin('alpha', { extra: provides() })
    const m = await start()
    await m.setPolicy({ plugin: 'alpha', status: 'approved', grants: [], limits: { call_timeout: '50ms' } })
    expect(m.jobs.list()[0]?.timeoutMs).toBe(50)
  })

  it('relays state changes and job results to another replica on the same bus, each once', async () => {
    await writePlugin('alpha', { extra: provides() })
    const otherDir = await mkdtemp(path.join(tmpdir(), 'corral-replica-'))
    const other = createPluginManager({
      pluginsDir: otherDir,
      hostVersion: '1.0.0',
      backends,
      logger,
      runners: { wasm: new FakeRunner() },
      replicaId: 'replica-b',
    })
    const seenByOther: ManagerEvent[] = []
    other.events.subscribe((event) => seenByOther.push(event))
    try {
      await other.start()
      const m = await start({ replicaId: 'replica-a' })
      await m.jobs.runNow('alpha', 'tick')
      const relayed = seenByOther.filter((e) => e.type !== 'plugin.event')
      expect(relayed).toEqual([
        expect.objectContaining({
          type: 'plugin.state',
          plugin: 'alpha',
          to: 'loading',
          replica: 'replica-a',
        }),
        expect.objectContaining({
          type: 'plugin.state',
          plugin: 'alpha',
          to: 'running',
          replica: 'replica-a',
        }),
        expect.objectContaining({
          type: 'job.result',
          plugin: 'alpha',
          job: 'tick',
          ok: true,
          replica: 'replica-a',
        }),
      ])
      // This replica's own events come once, without a replica, and never as plugin events.
      expect(events.filter((e) => e.type === 'plugin.state').map((e) => [e.to, 'replica' in e])).toEqual([
        ['loading', false],
        ['running', false],
      ])
      expect(events.filter((e) => e.type === 'plugin.event')).toEqual([])
    } finally {
      await other.close()
      await rm(otherDir, { recursive: true, force: true })
    }
  })

  it('runs no jobs with jobs: false', async () => {
    await writePlugin('alpha', { extra: provides() })
    const m = await start({ jobs: false })
    expect(m.get('alpha')?.state).toBe('running')
    expect(m.jobs.list()).toEqual([])
    expect((await failure(m.jobs.runNow('alpha', 'tick'))).code).toBe('unavailable')
  })

  it('creates a plugin’s groups through the host’s store, and a store failure is reported, not fatal', async () => {
    await writePlugin('alpha', { extra: provides('alpha') })
    await writePlugin('beta', { extra: provides('beta') })
    const ensured: Array<GroupSpec & { plugin: string }> = []
    const m = await start({
      groups: {
        async ensure(group) {
          if (group.plugin === 'beta') throw new Error('the users store is down')
          ensured.push(group)
        },
      },
    })
    expect(ensured).toEqual([{ name: 'reporters', plugin: 'alpha' }])
    expect(m.get('beta')?.state).toBe('running')
    expect(logged).toContainEqual(
      expect.objectContaining({
        level: 'warn',
        message: expect.stringMatching(/reporters/),
        fields: expect.objectContaining({
          plugin: 'beta',
          error: expect.stringMatching(/users store is down/),
        }),
      }),
    )
  })
})
