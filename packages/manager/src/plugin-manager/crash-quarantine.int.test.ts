import { eventually, processExists } from '@corral/grpc-runner/testing'
import { corralWat } from '@corral/wasm-runner/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  failureCode,
  startManager,
  stateChanges,
  tempPluginsDir,
  writeSdkFixturePlugin,
  writeWatPlugin,
} from '../testing/plugin-folders.js'
import type { PluginManager } from './manager-api.js'

/**
 * Crash supervision through the manager, for both runtimes: a crash restarts the plugin after a
 * backoff (running → degraded → running), too many crashes in the window quarantine it (calls
 * refused), and `reset` brings it back. Every step is a state event and a line of its history.
 */

const crashes = 3
const expectedChanges = [
  'discovered→loading',
  'loading→running',
  'running→degraded',
  'degraded→running',
  'running→degraded',
  'degraded→running',
  'running→quarantined',
  'quarantined→degraded',
  'degraded→running',
]

describe('crash → restart → quarantine → reset, through the manager (real WASM and gRPC plugins)', () => {
  let folder: Awaited<ReturnType<typeof tempPluginsDir>>
  let started: Awaited<ReturnType<typeof startManager>>
  let manager: PluginManager

  beforeAll(async () => {
    folder = await tempPluginsDir()
    await writeWatPlugin(
      folder.dir,
      'trapper',
      corralWat('(func (export "trap") (param i32 i32) (result i64) unreachable)'),
    )
    await writeSdkFixturePlugin(folder.dir, 'exiter')
    started = await startManager({
      pluginsDir: folder.dir,
      restart: { maxRestarts: crashes - 1, restartWindowMs: 600_000, initialBackoffMs: 10, maxBackoffMs: 50 },
    })
    manager = started.manager
  }, 60_000)

  afterAll(async () => {
    await started?.close()
    await folder?.remove()
  })

  /** Waits until the plugin's state changes include `count` of `change`. */
  function changesOf(plugin: string, change: string, count: number): Promise<void> {
    return eventually(
      () => stateChanges(started.events, plugin).filter((c) => c === change).length >= count,
      30_000,
      `${count} × ${change} of ${plugin}`,
    )
  }

  it('a WASM plugin that traps is restarted, then quarantined, and reset brings it back', async () => {
    expect(manager.get('trapper')?.state).toBe('running')
    for (let crash = 1; crash < crashes; crash++) {
      expect(await failureCode(manager.call('trapper', 'trap'))).toBe('plugin_trap')
      await changesOf('trapper', 'degraded→running', crash)
      expect(await manager.call('trapper', 'echo', `after ${crash}`)).toBe(`after ${crash}`)
    }
    expect(await failureCode(manager.call('trapper', 'trap'))).toBe('plugin_trap')
    await eventually(() => manager.get('trapper')?.state === 'quarantined', 30_000, 'quarantine')
    expect(await failureCode(manager.call('trapper', 'echo', 'refused'))).toBe('unavailable')
    await manager.reset('trapper')
    await eventually(() => manager.get('trapper')?.state === 'running', 30_000, 'running after reset')
    expect(await manager.call('trapper', 'echo', 'back')).toBe('back')
    expect(stateChanges(started.events, 'trapper')).toEqual(expectedChanges)
    const info = manager.get('trapper')
    expect(info?.history.map((t) => `${t.from}→${t.to}`)).toEqual(expectedChanges)
    expect(info?.metrics.restarts).toBe(crashes)
    expect(info?.metrics.errors).toMatchObject({ plugin_trap: crashes })
  }, 60_000)

  it('a gRPC plugin whose process exits is restarted, then quarantined, and reset brings it back', async () => {
    expect(manager.get('exiter')?.state).toBe('running')
    const pids: number[] = [await manager.call<unknown, number>('exiter', 'pid')]
    for (let crash = 1; crash < crashes; crash++) {
      expect(await manager.call('exiter', 'crash', { afterMs: 50 })).toBe('crashing')
      await changesOf('exiter', 'degraded→running', crash)
      pids.push(await manager.call<unknown, number>('exiter', 'pid'))
    }
    expect(await manager.call('exiter', 'crash', { afterMs: 50 })).toBe('crashing')
    await eventually(() => manager.get('exiter')?.state === 'quarantined', 30_000, 'quarantine')
    expect(await failureCode(manager.call('exiter', 'pid'))).toBe('unavailable')
    // Every process it ran is gone: a quarantined plugin runs nothing.
    await eventually(() => pids.every((pid) => !processExists(pid)), 20_000, 'the processes to be gone')
    await manager.reset('exiter')
    await eventually(() => manager.get('exiter')?.state === 'running', 30_000, 'running after reset')
    const pid = await manager.call<unknown, number>('exiter', 'pid')
    expect(new Set([...pids, pid]).size).toBe(crashes + 1)
    expect(stateChanges(started.events, 'exiter')).toEqual(expectedChanges)
    expect(manager.get('exiter')?.history.map((t) => `${t.from}→${t.to}`)).toEqual(expectedChanges)
    expect(manager.get('exiter')?.metrics.restarts).toBe(crashes)
  }, 60_000)
})
