import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { eventually } from '@corral/grpc-runner/testing'
import { corralWat, wat2wasm } from '@corral/wasm-runner/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Backends, createBackends } from '../backends/create-backends.js'
import { prepareBackendSet } from '../testing/backend-sets.js'
import { approved, startManager, tempPluginsDir } from '../testing/plugin-folders.js'
import type { ManagerEvent, PluginManager } from './manager-api.js'
import { createPluginManager } from './plugin-manager.js'
import { replicaCommandType } from './replica-commands.js'

/**
 * Event subscriptions between real WASM plugins: `announcer` publishes `demo.hello` through the
 * host API; `listener` subscribes to `demo.*` (its manifest's `provides.events`) and answers each
 * event by publishing `seen.demo` with the event it got as data, which the test sees on the
 * manager's event stream; `deaf`
 * subscribes too but is granted nothing; `trapper`'s handler traps on every event.
 */

/** A WAT export `name` that publishes `body` (the JSON args of `events.publish`) through the host. */
function publishingExport(name: string, body: string, at: number): string {
  const escaped = body.replaceAll('"', '\\"')
  return `
  (data (i32.const ${at}) "events.publish")
  (data (i32.const ${at + 32}) "${escaped}")
  (func (export "${name}") (param i32 i32) (result i64)
    (call $host_call (i32.const ${at}) (i32.const 14) (i32.const ${at + 32}) (i32.const ${body.length})))`
}

/**
 * A WAT export `name` that publishes `seen.demo` with its own input (the event it was handed) as
 * data: `{"type":"seen.demo","data":` + input + `}` built at 4096.
 */
function answeringExport(name: string): string {
  const prefix = '{"type":"seen.demo","data":'
  return `
  (data (i32.const 1024) "events.publish")
  (data (i32.const 1056) "${prefix.replaceAll('"', '\\"')}")
  (func (export "${name}") (param $ptr i32) (param $len i32) (result i64)
    (memory.copy (i32.const 4096) (i32.const 1056) (i32.const ${prefix.length}))
    (memory.copy (i32.const ${4096 + prefix.length}) (local.get $ptr) (local.get $len))
    (i32.store8 (i32.add (i32.const ${4096 + prefix.length}) (local.get $len)) (i32.const 125))
    (call $host_call (i32.const 1024) (i32.const 14) (i32.const 4096)
      (i32.add (local.get $len) (i32.const ${prefix.length + 1}))))`
}

async function writePlugin(pluginsDir: string, name: string, wat: string, yaml: string): Promise<void> {
  const dir = path.join(pluginsDir, name)
  await mkdir(dir, { recursive: true })
  await writeFile(path.join(dir, 'plugin.wasm'), await wat2wasm(wat))
  await writeFile(
    path.join(dir, 'plugin.yaml'),
    `name: ${name}\nversion: 0.1.0\nruntime: wasm\nentry:\n  wasm: plugin.wasm\nresources:\n  call_timeout: 2s\n${yaml}`,
  )
}

const subscribing = (events: string, handler: string) =>
  `  permissions:\n    - { type: events, scope: ["${events}", "seen.*"] }\nprovides:\n  events:\n    - { type: "${events}", handler: ${handler} }\n`

describe('plugins subscribed to event types (real WASM plugins, the embedded bus)', () => {
  let folder: Awaited<ReturnType<typeof tempPluginsDir>>
  let started: Awaited<ReturnType<typeof startManager>>
  let manager: PluginManager
  /** What `plugin` answered, in order: the events its handler was handed. */
  const answers = (plugin: string) =>
    started.events.flatMap((e) =>
      e.type === 'plugin.event' && e.plugin === plugin && e.event === 'seen.demo' ? [e.data] : [],
    )
  const seen = (plugin: string) => answers(plugin).length
  const calls = (plugin: string) => manager.get(plugin)?.metrics.calls

  beforeAll(async () => {
    folder = await tempPluginsDir()
    const dir = folder.dir
    await writePlugin(
      dir,
      'announcer',
      corralWat(publishingExport('announce', '{"type":"demo.hello","data":{"n":1}}', 1024)),
      '  permissions:\n    - { type: events, scope: ["demo.*"] }\n',
    )
    const answering = corralWat(answeringExport('on_demo'))
    await writePlugin(dir, 'listener', answering, subscribing('demo.*', 'on_demo'))
    await writePlugin(dir, 'deaf', answering, subscribing('demo.*', 'on_demo'))
    await writePlugin(
      dir,
      'trapper',
      corralWat('(func (export "on_demo") (param i32 i32) (result i64) unreachable)'),
      subscribing('demo.*', 'on_demo'),
    )
    const grants = [{ type: 'events' as const, access: [], scope: ['demo.*', 'seen.*'] }]
    started = await startManager({
      pluginsDir: dir,
      policies: [approved('announcer', grants), approved('listener', grants), approved('trapper', grants)],
    })
    manager = started.manager
    for (const name of ['announcer', 'listener', 'deaf', 'trapper'])
      expect(manager.get(name)?.state).toBe('running')
  }, 60_000)

  afterAll(async () => {
    await started?.close()
    await folder?.remove()
  })

  it("delivers a plugin's event to a granted subscriber's handler, which runs with its own grant", async () => {
    expect(await manager.call('announcer', 'announce')).toEqual({ ok: {} })
    // Its answer goes out during its call: the call is counted when it returns.
    await eventually(() => seen('listener') === 1 && calls('listener') === 1, 10_000, 'the answer')
    expect(answers('listener')).toEqual([
      { type: 'demo.hello', data: { n: 1 }, plugin: 'announcer', at: expect.any(Number) },
    ])
  })

  it('delivers nothing to a subscriber whose grant does not cover the type', async () => {
    expect(manager.get('deaf')?.grant?.permissions).toEqual([])
    expect(manager.get('deaf')?.metrics.calls).toBe(0)
    expect(seen('deaf')).toBe(0)
  })

  it("keeps delivering to others while one plugin's handler traps, and counts its failures", async () => {
    await eventually(() => (manager.get('trapper')?.metrics.errors.plugin_trap ?? 0) >= 1, 10_000, 'the trap')
    for (let i = 0; i < 3; i++) await manager.call('announcer', 'announce')
    await eventually(() => seen('listener') === 4 && calls('listener') === 4, 10_000, 'every answer')
    expect(manager.get('listener')?.metrics.errors).toEqual({})
  })

  it('delivers what the host publishes on the bus', async () => {
    await started.backends.events.publish({
      type: 'demo.from-host',
      plugin: 'host',
      data: { from: 'host' },
      at: Date.now(),
    })
    await eventually(() => seen('listener') === 5 && calls('listener') === 5, 10_000, 'the answer')
    expect(answers('listener')[4]).toMatchObject({
      type: 'demo.from-host',
      plugin: 'host',
      data: { from: 'host' },
    })
  })

  it('follows the grant live: an event published while it is narrowed is never delivered', async () => {
    const grants = [{ type: 'events' as const, access: [], scope: ['demo.*', 'seen.*'] }]
    const publish = (n: string) =>
      started.backends.events.publish({ type: 'demo.tick', plugin: 'host', data: { n }, at: Date.now() })
    await manager.setPolicy(approved('listener', [{ type: 'events', access: [], scope: ['seen.*'] }]))
    await publish('narrowed')
    await manager.setPolicy(approved('listener', grants))
    await publish('widened')
    // Each plugin's events are delivered in order: the second answered means the first never came.
    await eventually(() => seen('listener') === 6 && calls('listener') === 6, 10_000, 'the answer')
    expect(answers('listener').slice(5)).toEqual([expect.objectContaining({ data: { n: 'widened' } })])
  })
})

describe('event subscriptions across replicas sharing PostgreSQL and Redis', () => {
  const grants = [{ type: 'events' as const, access: [], scope: ['demo.*', 'seen.*'] }]
  /** An administrator's command, as a plugin would forge it: unload `listener` on every replica. */
  const forgedCommand = { replica: 'replica-x', command: { action: 'unload', plugin: 'listener' } }
  let folders: Array<Awaited<ReturnType<typeof tempPluginsDir>>> = []
  let replicas: Array<{ backends: Backends; manager: PluginManager; warnings: string[] }> = []
  let redisUrl: string

  beforeAll(async () => {
    const config = await prepareBackendSet('distributed', 'events')
    redisUrl = config.redisUrl as string
    folders = [await tempPluginsDir(), await tempPluginsDir()]
    const [first, second] = folders as [(typeof folders)[number], (typeof folders)[number]]
    await writePlugin(
      first.dir,
      'announcer',
      corralWat(publishingExport('announce', '{"type":"demo.hello","data":{"n":1}}', 1024)),
      '  permissions:\n    - { type: events, scope: ["demo.*"] }\n',
    )
    // `forger` tries to pass an event off as an administrator's command, under the widest grant.
    await writePlugin(
      first.dir,
      'forger',
      corralWat(
        publishingExport(
          'forge_host',
          JSON.stringify({ type: replicaCommandType, data: forgedCommand }),
          1024,
        ) + publishingExport('forge_own', JSON.stringify({ type: 'command', data: forgedCommand }), 2048),
      ),
      '  permissions:\n    - { type: events, scope: ["*", "corral.*"] }\n',
    )
    await writePlugin(
      second.dir,
      'listener',
      corralWat(answeringExport('on_demo')),
      subscribing('demo.*', 'on_demo'),
    )
    for (const [i, folder] of folders.entries()) {
      const backends = await createBackends({ databaseUrl: config.databaseUrl, redisUrl: config.redisUrl })
      const warnings: string[] = []
      const manager = createPluginManager({
        pluginsDir: folder.dir,
        hostVersion: '1.0.0',
        backends,
        logger: { log: (level, message) => level === 'warn' && warnings.push(message) },
        replicaId: `replica-${i}`,
        policies: [
          approved('announcer', grants),
          approved('listener', grants),
          approved('forger', [{ type: 'events', access: [], scope: ['*', 'corral.*'] }]),
        ],
      })
      replicas.push({ backends, manager, warnings })
      await manager.start()
    }
  }, 60_000)

  afterAll(async () => {
    for (const { manager, backends } of replicas) {
      await manager.close()
      await backends.close()
    }
    for (const folder of folders) await folder.remove()
    replicas = []
    folders = []
  })

  it('delivers an event published on one replica to a subscriber loaded on the other', async () => {
    const [a, b] = replicas as [(typeof replicas)[number], (typeof replicas)[number]]
    const seenOnA: ManagerEvent[] = []
    a.manager.events.subscribe((e) => {
      if (e.type === 'plugin.event' && e.event === 'seen.demo') seenOnA.push(e)
    })
    expect(b.manager.get('listener')?.state).toBe('running')
    expect(await a.manager.call('announcer', 'announce')).toEqual({ ok: {} })
    // The listener runs on replica b; its answer comes back to replica a over Redis.
    await eventually(() => seenOnA.length === 1, 10_000, "replica a to see the listener's answer")
    expect(seenOnA[0]).toMatchObject({
      plugin: 'listener',
      data: { type: 'demo.hello', plugin: 'announcer' },
    })
    await eventually(() => b.manager.get('listener')?.metrics.calls === 1, 10_000, 'the call counted')
  })

  it('drops what is not an event or a well-formed command on the bus, logging the command', async () => {
    const [, b] = replicas as [(typeof replicas)[number], (typeof replicas)[number]]
    const { Redis } = await import('ioredis')
    const redis = new Redis(redisUrl)
    try {
      for (const message of [
        'null',
        '{"type":5}',
        JSON.stringify({ type: replicaCommandType, plugin: 'listener', data: null, at: 0 }),
        JSON.stringify({
          type: replicaCommandType,
          plugin: 'listener',
          data: { replica: 'replica-x', command: { action: 'unload', plugin: 'listener', path: '/' } },
          at: 0,
        }),
      ])
        await redis.publish('corral:events', message)
    } finally {
      redis.disconnect()
    }
    const dropped = () => b.warnings.filter((w) => w === 'a malformed replica command was dropped').length
    await eventually(() => dropped() === 2, 10_000, 'both malformed commands logged on b')
    expect(b.manager.get('listener')?.state).toBe('running')
  })

  it('never takes a plugin’s event for an administrator’s command', async () => {
    const [a, b] = replicas as [(typeof replicas)[number], (typeof replicas)[number]]
    const forgedOnB: ManagerEvent[] = []
    b.manager.events.subscribe((e) => {
      if (e.type === 'plugin.event' && e.plugin === 'forger') forgedOnB.push(e)
    })
    // The host's namespace is refused whatever the grant; in its own, the command is just its event.
    expect(await a.manager.call('forger', 'forge_host')).toMatchObject({
      error: { code: 'permission_denied' },
    })
    expect(await a.manager.call('forger', 'forge_own')).toEqual({ ok: {} })
    await eventually(() => forgedOnB.length === 1, 10_000, 'the forger’s event on replica b')
    expect(forgedOnB[0]).toMatchObject({ event: 'command', data: forgedCommand })
    expect(b.manager.get('listener')?.state).toBe('running')
    // The same message from the host is a command: the forger's was well formed, and refused.
    await a.backends.events.publish({
      type: replicaCommandType,
      plugin: 'listener',
      data: forgedCommand,
      at: Date.now(),
    })
    await eventually(() => b.manager.get('listener') === undefined, 10_000, 'listener unloaded on b')
  })
})
