import type { Plugin } from '@corral/types'
import { afterAll, beforeEach, describe, expect, it } from 'vitest'
import { manualClock } from '../testing/manual-clock.js'
import { failure } from '../testing/plugin-failure.js'
import { reachedState } from '../testing/plugin-state.js'
import { corralWat, writeTestPlugin } from '../testing/wat-plugin.js'
import { createWasmRunner } from './wasm-runner.js'

/**
 * Crash supervision with real instances: a trap, a dead worker or a call stopped at its deadline is
 * a crash; the plugin restarts after a backoff (the test moves the clock), and is quarantined after
 * too many crashes in the window.
 */
const clock = manualClock()
const backoffMs = 100
const runner = createWasmRunner({
  clock,
  restart: { maxRestarts: 2, restartWindowMs: 60_000, initialBackoffMs: backoffMs, maxBackoffMs: 1_000 },
  logger: { log() {} },
})
const removals: (() => Promise<void>)[] = []
afterAll(async () => {
  await runner.close()
  await Promise.all(removals.map((remove) => remove()))
})

const guest = corralWat(`
  (func (export "trap") (param i32 i32) (result i64) unreachable)
  (func (export "spin") (param i32 i32) (result i64) (loop $forever (br $forever)) (i64.const 0))`)

let plugin: Plugin
let changes: string[]
beforeEach(async () => {
  const test = await writeTestPlugin(guest)
  removals.push(test.remove)
  plugin = await runner.load(test)
  await plugin.init({})
  changes = []
  plugin.onStateChange((change) => changes.push(`${change.from}->${change.to}`))
})

/** Lets the backoff pass and waits for the restarted instance. */
async function restarted(): Promise<void> {
  expect(plugin.state).toBe('restarting')
  clock.advance(1_000)
  await reachedState(plugin, 'running')
}

describe('a WASM plugin under supervision', () => {
  it('a trap restarts it: restarting until the backoff has passed, then running and serving', async () => {
    expect((await failure(plugin.call('trap'))).code).toBe('plugin_trap')
    expect(plugin.state).toBe('restarting')
    // No instance starts during the backoff: a call waits within its deadline, then fails.
    const waited = await failure(plugin.call('echo', 'early', { timeoutMs: 200 }))
    expect(waited.code).toBe('unavailable')
    expect(waited.rawMessage).toMatch(/restarting/)
    clock.advance(backoffMs - 1)
    expect(plugin.state).toBe('restarting')
    // A call waiting when the backoff ends gets the restarted instance.
    const waiting = plugin.call('echo', 'waited')
    clock.advance(1)
    await reachedState(plugin, 'running')
    expect(await waiting).toBe('waited')
    expect(await plugin.call('echo', 'next')).toBe('next')
    expect(changes).toEqual(['running->restarting', 'restarting->running'])
  })

  it('a call that hangs is stopped at its deadline with its own code, and restarts the plugin', async () => {
    expect((await failure(plugin.call('spin', null, { timeoutMs: 100 }))).code).toBe('deadline_exceeded')
    await restarted()
    expect(await plugin.call('echo', 'after')).toBe('after')
  })

  it('a canceled call is not a crash', async () => {
    const abort = new AbortController()
    const call = plugin.call('spin', null, { signal: abort.signal })
    setTimeout(() => abort.abort(), 50)
    expect((await failure(call)).code).toBe('canceled')
    expect(plugin.state).toBe('running')
    expect(await plugin.call('echo', 'still')).toBe('still')
    expect(changes).toEqual([])
  })

  it('too many crashes quarantine it: calls fail at once with unavailable until reset()', async () => {
    for (let crash = 0; crash < 2; crash++) {
      await failure(plugin.call('trap'))
      await restarted()
    }
    expect((await failure(plugin.call('trap'))).code).toBe('plugin_trap')
    expect(plugin.state).toBe('quarantined')
    const refused = await failure(plugin.call('echo', 'no'))
    expect(refused.code).toBe('unavailable')
    expect(refused.rawMessage).toMatch(/quarantined/)
    expect(await plugin.health()).toMatchObject({ ready: false })
    // Nothing restarts it on its own.
    clock.advance(120_000)
    expect(plugin.state).toBe('quarantined')
    await plugin.reset()
    expect(plugin.state).toBe('running')
    expect(await plugin.call('echo', 'back')).toBe('back')
    expect(changes).toEqual([
      'running->restarting',
      'restarting->running',
      'running->restarting',
      'restarting->running',
      'running->quarantined',
      'quarantined->restarting',
      'restarting->running',
    ])
  })

  it('shutdown is reported as stopping, then stopped', async () => {
    await plugin.shutdown()
    expect(plugin.state).toBe('stopped')
    expect(changes).toEqual(['running->stopping', 'stopping->stopped'])
  })
})
