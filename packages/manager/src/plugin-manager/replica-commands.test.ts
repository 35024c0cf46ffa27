import { eventually } from '@corral/grpc-runner/testing'
import type { LogLevel } from '@corral/types'
import { PluginError } from '@corral/types'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createLocalEventBus, type EventBus } from '../backends/event-bus.js'
import { createReplicaCommands, type ReplicaCommand, replicaCommandType } from './replica-commands.js'

/** Two replicas' command channels on one in-process bus, each recording what it was told to run and logged. */
describe('replica commands', () => {
  let bus: EventBus
  const ran: Array<{ on: string; command: ReplicaCommand; from: string }> = []
  const logged: Array<{ on: string; level: LogLevel; message: string }> = []
  let failWith: PluginError | undefined
  const replica = (id: string) =>
    createReplicaCommands(bus, {
      replicaId: id,
      logger: { log: (level, message) => logged.push({ on: id, level, message }) },
      async run(command, from) {
        ran.push({ on: id, command, from })
        if (failWith !== undefined) throw failWith
      },
    })

  beforeEach(() => {
    bus = createLocalEventBus()
    ran.length = 0
    logged.length = 0
    failWith = undefined
  })
  afterEach(async () => {
    await bus.close()
  })

  it('runs a command on the other replicas, never on the one that sent it', async () => {
    const a = replica('a')
    replica('b')
    replica('c')
    a.send({ action: 'reload', plugin: 'stats' })
    await eventually(() => ran.length === 2, 1_000, 'the command run on b and c')
    expect(ran).toEqual([
      { on: 'b', command: { action: 'reload', plugin: 'stats' }, from: 'a' },
      { on: 'c', command: { action: 'reload', plugin: 'stats' }, from: 'a' },
    ])
  })

  it('drops a malformed message with a log line', async () => {
    replica('b')
    const malformed = [
      null,
      'reload stats',
      { replica: 'a' },
      { replica: 'a', command: { action: 'delete', plugin: 'stats' } },
      { replica: 'a', command: { action: 'load', plugin: 'stats' } },
      { replica: 'a', command: { action: 'reload', plugin: 'stats', path: '/tmp/x' } },
      { replica: '', command: { action: 'reload', plugin: 'stats' } },
      { replica: 'a', command: { action: 'reload', plugin: 'stats' }, also: 1 },
    ]
    for (const data of malformed) await bus.publish({ type: replicaCommandType, plugin: 'x', data, at: 0 })
    expect(ran).toEqual([])
    expect(logged).toEqual(
      malformed.map(() => ({ on: 'b', level: 'warn', message: 'a malformed replica command was dropped' })),
    )
  })

  it('takes only its own type: a plugin event carrying a command is not one', async () => {
    replica('b')
    const data = { replica: 'a', command: { action: 'unload', plugin: 'stats' } }
    await bus.publish({ type: 'command', plugin: 'forger', data, at: 0 })
    await bus.publish({ type: 'corral.plugin.state', plugin: 'forger', data, at: 0 })
    await bus.publish({ type: replicaCommandType, plugin: 'x', data, at: 0 })
    expect(ran).toEqual([{ on: 'b', command: { action: 'unload', plugin: 'stats' }, from: 'a' }])
  })

  it('logs a command that fails here, and goes on taking commands', async () => {
    const a = replica('a')
    replica('b')
    failWith = new PluginError('not_found', 'no such plugin', { plugin: 'gone' })
    a.send({ action: 'unload', plugin: 'gone' })
    await eventually(() => logged.length === 1, 1_000, 'the failure logged')
    expect(logged).toEqual([
      { on: 'b', level: 'warn', message: 'unload sent by replica a failed on this one' },
    ])
    failWith = undefined
    a.send({ action: 'load', plugin: 'stats', path: '/plugins/stats' })
    await eventually(() => ran.length === 2, 1_000, 'the next command run')
  })

  it('stops taking commands once closed', async () => {
    const a = replica('a')
    replica('b').close()
    a.send({ action: 'reset', plugin: 'stats' })
    await new Promise((resolve) => setImmediate(resolve))
    expect(ran).toEqual([])
  })
})
