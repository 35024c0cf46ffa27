import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { corralWat, type TestPlugin, writeTestPlugin } from '../testing/wat-plugin.js'
import { createWasmRunner } from './wasm-runner.js'

const runner = createWasmRunner()
const cleanups: TestPlugin[] = []
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((p) => p.remove()))
})
afterAll(() => runner.close())

/** Waits until `check` holds (a hang guard, not a timing assertion). */
async function until(check: () => boolean, limitMs = 5_000): Promise<void> {
  const start = Date.now()
  while (!check()) {
    if (Date.now() - start > limitMs) throw new Error('the condition never held')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/**
 * A plugin that tells the host (a host call named after the export) when an instance runs
 * `corral_init` or `corral_shutdown`; `config` returns the config its instance was initialised with.
 */
const lifecycleWat = corralWat(`
  (data (i32.const 1024) "init")
  (data (i32.const 1032) "shutdown")
  (global $config_ptr (mut i32) (i32.const 0))
  (global $config_len (mut i32) (i32.const 0))
  (func (export "corral_init") (param $ptr i32) (param $len i32) (result i64)
    (global.set $config_ptr (local.get $ptr))
    (global.set $config_len (local.get $len))
    (drop (call $host_call (i32.const 1024) (i32.const 4) (i32.const 0) (i32.const 0)))
    (i64.const 0))
  (func (export "corral_shutdown") (param i32 i32) (result i64)
    (drop (call $host_call (i32.const 1032) (i32.const 8) (i32.const 0) (i32.const 0)))
    (i64.const 0))
  (func (export "corral_health") (param i32 i32) (result i64) (i64.const 0))
  (func (export "config") (param i32 i32) (result i64)
    (call $pack (global.get $config_ptr) (global.get $config_len)))`)

async function load(hostApi: (method: string) => Promise<unknown>) {
  const test = await writeTestPlugin(lifecycleWat, { idleTimeoutMs: 100, hostApi })
  cleanups.push(test)
  const plugin = await runner.load(test)
  await plugin.init({ greeting: 'hi' })
  return plugin
}

describe('idle instances', () => {
  it('stop after the idle time (corral_shutdown runs); the next call starts one, which re-inits', async () => {
    const seen: string[] = []
    const plugin = await load(async (method) => seen.push(method))
    expect(await plugin.call('config')).toEqual({ config: { greeting: 'hi' } })
    await until(() => seen.includes('shutdown'))
    // A health probe does not wake the idle plugin.
    expect((await plugin.health()).message).toMatch(/idle, no instance running/)
    expect(seen).toEqual(['init', 'shutdown'])
    expect(await plugin.call('config')).toEqual({ config: { greeting: 'hi' } })
    expect(seen).toEqual(['init', 'shutdown', 'init'])
    await plugin.shutdown()
  })

  it('serves a call that arrives while the last instance is stopping, once it has stopped', async () => {
    const seen: string[] = []
    let endShutdown: (() => void) | undefined
    const plugin = await load((method) => {
      seen.push(method)
      // Only the first shutdown waits for the test.
      if (method !== 'shutdown' || endShutdown !== undefined) return Promise.resolve(null)
      return new Promise((resolve) => (endShutdown = () => resolve(null)))
    })
    await until(() => endShutdown !== undefined)
    let served = false
    const call = plugin.call('config').then((value) => {
      served = true
      return value
    })
    await new Promise((resolve) => setTimeout(resolve, 50))
    // max_instances 1: no second instance starts beside the stopping one.
    expect([served, seen]).toEqual([false, ['init', 'shutdown']])
    endShutdown?.()
    expect(await call).toEqual({ config: { greeting: 'hi' } })
    expect(seen).toEqual(['init', 'shutdown', 'init'])
    await plugin.shutdown()
  })
})
