import { createGrpcRunner } from '@corral/grpc-runner'
import { examplePlugin, memoryLogger } from '@corral/grpc-runner/testing'
import type { EffectiveGrant, Plugin } from '@corral/types'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Backends, createBackends } from '../backends/create-backends.js'
import { createSandboxedHostApi, type SandboxedHostApi } from '../host-api/sandboxed-host-api.js'

// hello-grpc's notes end to end: the plugin process's host calls go over the broker to the real
// sandboxed host API of @corral/manager, which runs them on embedded SQLite (executor processes).
describe('hello-grpc addNote and stats against the sandboxed host API on SQLite', () => {
  const { logger } = memoryLogger()
  const runner = createGrpcRunner({ hostVersion: '0.1.0', logger })
  let backends: Backends
  let grant: EffectiveGrant
  let plugin: Plugin
  let hostApi: SandboxedHostApi
  /** The plugin's own tables live in its own database: the test reads them as the plugin does. */
  async function queryAsPlugin(sql: string): Promise<unknown[]> {
    const context = { plugin: 'hello-grpc', token: 'test' }
    return ((await hostApi.forPlugin('hello-grpc')('db.query', { sql }, context)) as { rows: unknown[] }).rows
  }

  beforeAll(async () => {
    // Empty URLs: the embedded set whatever the environment says.
    backends = await createBackends({ databaseUrl: '', redisUrl: '' })
    const example = await examplePlugin('hello-grpc')
    grant = example.grant
    hostApi = createSandboxedHostApi({
      backends,
      // Looked up per host call: a test narrows the grant live.
      grants: () => grant,
      logger: { log() {} },
    })
    plugin = await runner.load({ ...example, hostApi: hostApi.forPlugin('hello-grpc') })
    await plugin.register()
    await plugin.init({ greeting: 'Hi' })
  })
  afterAll(async () => {
    await runner.close()
    await backends?.close()
  })

  it('creates its table during init', async () => {
    const tables = await queryAsPlugin(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'hello_grpc_notes'",
    )
    expect(tables).toEqual([{ name: 'hello_grpc_notes' }])
  })

  it('adds notes that land in the table, and counts them per day', async () => {
    expect(await plugin.call('addNote', { day: '2026-11-21', text: 'first' })).toEqual({ ok: true })
    expect(await plugin.call('addNote', { day: '2026-11-22', text: 'second' })).toEqual({ ok: true })
    expect(await plugin.call('addNote', { day: '2026-11-21', text: "it's third" })).toEqual({ ok: true })
    const rows = await queryAsPlugin('SELECT day, text FROM hello_grpc_notes ORDER BY rowid')
    expect(rows).toEqual([
      { day: '2026-11-21', text: 'first' },
      { day: '2026-11-22', text: 'second' },
      { day: '2026-11-21', text: "it's third" },
    ])
    expect(await plugin.call('stats')).toEqual({
      days: [
        { day: '2026-11-21', notes: 2 },
        { day: '2026-11-22', notes: 1 },
      ],
    })
  })

  it('refuses addNote once the grant is read-only, while stats still answers', async () => {
    const before = grant
    grant = { ...grant, permissions: [{ type: 'db', access: ['read'], scope: ['hello_grpc_*'] }] }
    try {
      await expect(plugin.call('addNote', { day: '2026-11-23', text: 'refused' })).rejects.toMatchObject({
        code: 'permission_denied',
        plugin: 'hello-grpc',
      })
      const days = ((await plugin.call('stats')) as { days: Array<{ day: string }> }).days
      expect(days.map((d) => d.day)).toEqual(['2026-11-21', '2026-11-22'])
    } finally {
      grant = before
    }
  })

  it('refuses a note that is not text with invalid_argument, and writes nothing', async () => {
    await expect(plugin.call('addNote', { day: '2026-11-24' })).rejects.toMatchObject({
      code: 'invalid_argument',
    })
    const [count] = await queryAsPlugin('SELECT COUNT(*) AS n FROM hello_grpc_notes')
    expect(count).toEqual({ n: 3 })
  })
})
