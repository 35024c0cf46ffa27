import type { Plugin, PluginError } from '@corral/types'
import { isPluginError } from '@corral/types'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { reachedState } from '../testing/plugin-state.js'
import { corralWat, type TestPluginOptions, wat2wasm, writeTestPlugin } from '../testing/wat-plugin.js'
import { createWasmRunner } from './wasm-runner.js'

/**
 * Hostile plugins, written in WAT. For each: the exact error code, the host's event loop keeps
 * running during the bad call (a timer keeps ticking), and good calls work after it.
 */
const runner = createWasmRunner()
const removals: (() => Promise<void>)[] = []
let good: Plugin

beforeAll(async () => {
  good = await loadPlugin(corralWat(''), { name: 'good' })
})
afterAll(async () => {
  await runner.close()
  await Promise.all(removals.map((remove) => remove()))
})

async function loadPlugin(module: string | Uint8Array, options: TestPluginOptions = {}): Promise<Plugin> {
  const test = await writeTestPlugin(module, options)
  removals.push(test.remove)
  const plugin = await runner.load(test)
  await plugin.init({})
  return plugin
}

/** Runs `action`, counting the host's timer ticks meanwhile; returns its error and the ticks. */
async function misbehave(action: () => Promise<unknown>): Promise<{ error: PluginError; ticks: number }> {
  let ticks = 0
  const timer = setInterval(() => ticks++, 10)
  try {
    await action()
  } catch (error) {
    expect(isPluginError(error)).toBe(true)
    return { error: error as PluginError, ticks }
  } finally {
    clearInterval(timer)
  }
  throw new Error('expected the hostile plugin to fail')
}

/** The host and the other plugins keep serving, and (when given) the hostile plugin's next call works. */
async function stillServing(plugin?: Plugin): Promise<void> {
  expect(await good.call('echo', { ok: true })).toEqual({ ok: true })
  if (plugin === undefined) return
  // A crash restarts the plugin after a backoff, which the next call (300 ms in some) is not to wait out.
  await reachedState(plugin, 'running')
  expect(await plugin.call('echo', 'next')).toBe('next')
}

const spin = `(func (export "spin") (param i32 i32) (result i64) (loop $forever (br $forever)) (i64.const 0))`

describe('hostile plugins', () => {
  it('an infinite loop is stopped at its deadline: deadline_exceeded', async () => {
    const plugin = await loadPlugin(corralWat(spin), { limits: { call_timeout: 300 } })
    const { error, ticks } = await misbehave(() => plugin.call('spin'))
    expect(error.code).toBe('deadline_exceeded')
    expect(ticks).toBeGreaterThanOrEqual(5)
    await stillServing(plugin)
  })

  it('a caller cannot lengthen a call past the grant call_timeout: deadline_exceeded', async () => {
    const plugin = await loadPlugin(corralWat(spin), { limits: { call_timeout: 300 } })
    const { error } = await misbehave(() => plugin.call('spin', null, { timeoutMs: 60_000 }))
    expect(error.code).toBe('deadline_exceeded')
    await stillServing(plugin)
  })

  it('an infinite loop of host calls is stopped at its deadline: deadline_exceeded', async () => {
    let hostCalls = 0
    const plugin = await loadPlugin(
      corralWat(`
        (data (i32.const 1024) "log")
        (func (export "chatter") (param i32 i32) (result i64)
          (loop $forever
            (drop (call $host_call (i32.const 1024) (i32.const 3) (i32.const 0) (i32.const 0)))
            (br $forever))
          (i64.const 0))`),
      { hostApi: async () => ++hostCalls, limits: { call_timeout: 300 } },
    )
    const { error, ticks } = await misbehave(() => plugin.call('chatter'))
    expect(error.code).toBe('deadline_exceeded')
    expect(hostCalls).toBeGreaterThan(10)
    expect(ticks).toBeGreaterThanOrEqual(5)
    await stillServing(plugin)
  })

  it('a host call larger than max_host_call_bytes never reaches the host API: resource_exhausted', async () => {
    let hostCalls = 0
    const plugin = await loadPlugin(
      corralWat(`
        (data (i32.const 1024) "log")
        (func (export "big") (param i32 i32) (result i64)
          (call $host_call (i32.const 1024) (i32.const 3) (i32.const 2048) (i32.const 8192)))`),
      { hostApi: async () => ++hostCalls, limits: { max_host_call_bytes: 4096 } },
    )
    const answer = (await plugin.call('big')) as { error?: { code: string; message: string } }
    expect(answer.error?.code).toBe('resource_exhausted')
    expect(answer.error?.message).toContain('max_host_call_bytes 4096')
    expect(hostCalls).toBe(0)
    await stillServing(plugin)
  })

  it('a host call that never answers is cut off at the deadline: deadline_exceeded', async () => {
    const plugin = await loadPlugin(
      corralWat(`
        (data (i32.const 1024) "db.query")
        (func (export "wait") (param i32 i32) (result i64)
          (call $host_call (i32.const 1024) (i32.const 8) (i32.const 0) (i32.const 0)))`),
      { hostApi: () => new Promise(() => {}), limits: { call_timeout: 300 } },
    )
    const { error, ticks } = await misbehave(() => plugin.call('wait'))
    expect(error.code).toBe('deadline_exceeded')
    expect(ticks).toBeGreaterThanOrEqual(5)
    await stillServing(plugin)
  })

  it('shutdown is bounded by shutdown_timeout even while a call spins: the call fails with unavailable', async () => {
    const plugin = await loadPlugin(corralWat(spin), {
      limits: { call_timeout: 60_000, shutdown_timeout: 300 },
    })
    const spinning = misbehave(() => plugin.call('spin'))
    await new Promise((resolve) => setTimeout(resolve, 50))
    // Without the bound, shutdown would wait for the 60 s call timeout, past this test's own.
    await plugin.shutdown()
    const { error, ticks } = await spinning
    expect(error.code).toBe('unavailable')
    expect(ticks).toBeGreaterThanOrEqual(5)
    expect((await plugin.health()).ready).toBe(false)
    await stillServing()
  })

  it('a memory bomb stops at the granted cap: memory.grow fails inside the guest', async () => {
    const plugin = await loadPlugin(
      corralWat(`
        (data (i32.const 1024) "pages")
        (func (export "bomb") (param i32 i32) (result i64)
          (local $pages i32)
          (block $capped
            (loop $grow
              (br_if $capped (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
              (br $grow)))
          ;; Past the cap, in one big step: still refused.
          (if (i32.ne (memory.grow (i32.const 1000)) (i32.const -1)) (then unreachable))
          ;; Report the final size as a JSON number (digits written at 2048).
          (local.set $pages (memory.size))
          (i32.store8 (i32.const 2048) (i32.add (i32.const 48) (i32.div_u (local.get $pages) (i32.const 10))))
          (i32.store8 (i32.const 2049) (i32.add (i32.const 48) (i32.rem_u (local.get $pages) (i32.const 10))))
          (call $pack (i32.const 2048) (i32.const 2)))`),
      { limits: { memory_mb: 4 } },
    )
    // 4 MiB = 64 pages of 64 KiB, and not one more.
    expect(await plugin.call('bomb')).toBe(64)
    await stillServing()
  })

  it('a guest that gives up when its memory cannot grow past the cap: resource_exhausted naming the cap', async () => {
    const plugin = await loadPlugin(
      corralWat(`
        ;; As AssemblyScript's allocator grows memory: double it, else grow by what is needed, and
        ;; when neither can be had, trap.
        (func $grow (param $pages i32)
          (if (i32.lt_s (memory.grow (memory.size)) (i32.const 0))
            (then (if (i32.lt_s (memory.grow (local.get $pages)) (i32.const 0)) (then unreachable)))))
        (func (export "hoard") (param i32 i32) (result i64)
          (loop $more (call $grow (i32.const 1)) (br $more))
          (i64.const 0))`),
      { limits: { memory_mb: 4 } },
    )
    const { error } = await misbehave(() => plugin.call('hoard'))
    expect([error.code, error.rawMessage]).toEqual([
      'resource_exhausted',
      "hoard ran out of memory: the guest's memory (4.0 MiB) could not grow within its cap of 4 MiB (memory_mb)",
    ])
    await stillServing(plugin)
    // A guest that starts at its cap and traps did not run out of memory: plugin_trap.
    const full = await loadPlugin(
      corralWat(`(func (export "crash") (param i32 i32) (result i64) unreachable)`, { pages: 64 }),
      {
        limits: { memory_mb: 4 },
      },
    )
    expect((await misbehave(() => full.call('crash'))).error.code).toBe('plugin_trap')
  })

  it('a guest that cannot allocate its input: resource_exhausted, and the instance is replaced', async () => {
    const plugin = await loadPlugin(corralWat(''), { limits: { memory_mb: 2 } })
    const { error } = await misbehave(() => plugin.call('echo', { data: 'x'.repeat(3 << 20) }))
    expect(error.code).toBe('resource_exhausted')
    await stillServing(plugin)
  })

  it('deep recursion overflows the stack: plugin_trap', async () => {
    const plugin = await loadPlugin(
      corralWat(`
        (func $down (param $n i32) (result i32) (i32.add (call $down (i32.add (local.get $n) (i32.const 1))) (i32.const 1)))
        (func (export "recurse") (param i32 i32) (result i64) (i64.extend_i32_u (call $down (i32.const 0))))`),
    )
    const { error } = await misbehave(() => plugin.call('recurse'))
    expect(error.code).toBe('plugin_trap')
    expect(error.rawMessage).toMatch(/stack/)
    await stillServing(plugin)
  })

  it('a trap in _initialize fails the load: load_failed', async () => {
    const { error } = await misbehave(() =>
      loadPlugin(corralWat(`(func (export "_initialize") unreachable)`), { name: 'bad-init' }),
    )
    expect(error.code).toBe('load_failed')
    expect(error.rawMessage).toMatch(/_initialize/)
    await stillServing()
  })

  it('a trap in corral_init fails init: plugin_trap; a later init with a good config works', async () => {
    const test = await writeTestPlugin(
      corralWat(`
        ;; Traps on any config longer than {"config":{}}.
        (func (export "corral_init") (param i32 i32) (result i64)
          (if (i32.gt_u (local.get 1) (i32.const 13)) (then unreachable))
          (i64.const 0))`),
    )
    removals.push(test.remove)
    const plugin = await runner.load(test)
    const { error } = await misbehave(() => plugin.init({ explode: true }))
    expect(error.code).toBe('plugin_trap')
    await plugin.init({})
    await stillServing(plugin)
  })

  it('an output pointer outside guest memory: plugin_trap', async () => {
    const plugin = await loadPlugin(
      corralWat(
        `(func (export "wild") (param i32 i32) (result i64) (call $pack (i32.const 0x7ffffff0) (i32.const 64)))`,
      ),
    )
    const { error } = await misbehave(() => plugin.call('wild'))
    expect(error.code).toBe('plugin_trap')
    expect(error.rawMessage).toMatch(/outside guest memory/)
    await stillServing(plugin)
  })

  it('an output larger than the cap: resource_exhausted', async () => {
    const plugin = await loadPlugin(
      corralWat(
        `(func (export "flood") (param i32 i32) (result i64) (call $pack (i32.const 0) (i32.const 100000)))`,
      ),
      { limits: { max_output_bytes: 10_000 } },
    )
    const { error } = await misbehave(() => plugin.call('flood'))
    expect(error.code).toBe('resource_exhausted')
    await stillServing(plugin)
  })

  it('output that is not JSON: plugin_error naming the plugin and the function', async () => {
    const plugin = await loadPlugin(
      corralWat(`
  (data (i32.const 1024) "{not json")
  (func (export "garble") (param i32 i32) (result i64) (call $pack (i32.const 1024) (i32.const 9)))`),
      { name: 'garbler' },
    )
    const { error } = await misbehave(() => plugin.call('garble'))
    expect(error.code).toBe('plugin_error')
    expect(error.plugin).toBe('garbler')
    expect(error.rawMessage).toBe('garble returned output that is not JSON')
    await stillServing(plugin)
  })

  it('a registration that is not JSON: load_failed naming the plugin', async () => {
    const plugin = await loadPlugin(
      corralWat(`
  (data (i32.const 1024) "{\\"name\\": ")
  (func (export "corral_register") (param i32 i32) (result i64) (call $pack (i32.const 1024) (i32.const 9)))`),
      { name: 'garbled' },
    )
    const { error } = await misbehave(() => plugin.register())
    expect(error.code).toBe('load_failed')
    expect(error.plugin).toBe('garbled')
    expect(error.rawMessage).toBe('register() returned a registration that is not JSON')
    await stillServing(plugin)
  })

  it('a host_call argument pointer outside guest memory: plugin_trap', async () => {
    const plugin = await loadPlugin(
      corralWat(`
        (func (export "wild_args") (param i32 i32) (result i64)
          (call $host_call (i32.const 0) (i32.const 3) (i32.const 0x7ffffff0) (i32.const 64)))`),
    )
    const { error } = await misbehave(() => plugin.call('wild_args'))
    expect(error.code).toBe('plugin_trap')
    await stillServing(plugin)
  })

  it('missing exports fail the load, naming them: load_failed', async () => {
    const wasm = await wat2wasm(`(module
      (memory (export "memory") 1)
      (func (export "corral_abi_version") (result i32) (i32.const 1)))`)
    const { error } = await misbehave(() => loadPlugin(wasm))
    expect(error.code).toBe('load_failed')
    expect(error.rawMessage).toMatch(/missing export corral_alloc/)
    await stillServing()
  })

  it('unknown imports fail the load, naming them: load_failed', async () => {
    const { error } = await misbehave(() =>
      loadPlugin(corralWat('', { imports: `(import "env" "seed" (func (result i32)))` })),
    )
    expect(error.code).toBe('load_failed')
    expect(error.rawMessage).toMatch(/unknown import env\.seed/)
    await stillServing()
  })

  it('an env.abort that is not AssemblyScript’s fails the load: load_failed', async () => {
    const { error } = await misbehave(() =>
      loadPlugin(corralWat('', { imports: `(import "env" "abort" (func (param i32)))` })),
    )
    expect(error.code).toBe('load_failed')
    expect(error.rawMessage).toMatch(/import env\.abort must be/)
    await stillServing()
  })

  it('a wrong ABI version: incompatible', async () => {
    const { error } = await misbehave(() => loadPlugin(corralWat('', { version: 2 })))
    expect(error.code).toBe('incompatible')
    expect(error.rawMessage).toMatch(/version 2/)
    await stillServing()
  })

  it('garbage bytes as a module: load_failed', async () => {
    const { error } = await misbehave(() => loadPlugin(new TextEncoder().encode('this is not wasm at all')))
    expect(error.code).toBe('load_failed')
    await stillServing()
  })

  it('a module whose initial memory exceeds the cap: load_failed', async () => {
    const { error } = await misbehave(() =>
      loadPlugin(corralWat('', { pages: 200 }), { limits: { memory_mb: 4 } }),
    )
    expect(error.code).toBe('load_failed')
    expect(error.rawMessage).toMatch(/200 pages/)
    await stillServing()
  })
})
