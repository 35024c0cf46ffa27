import type { HostCallContext } from '@corral/types'
import { isPluginError, PluginError } from '@corral/types'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { corralWat, type TestPlugin, writeTestPlugin } from '../testing/wat-plugin.js'
import { createWasmRunner } from './wasm-runner.js'

const runner = createWasmRunner()
const cleanups: TestPlugin[] = []
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((p) => p.remove()))
})
afterAll(() => runner.close())

async function load(wat: string, options: Parameters<typeof writeTestPlugin>[1] = {}) {
  const test = await writeTestPlugin(wat, options)
  cleanups.push(test)
  const plugin = await runner.load(test)
  await plugin.init({})
  return plugin
}

/**
 * A plugin whose `block` export waits in a host call until `release()`, which releases every call
 * waiting; each then returns `{ok: 'released'}`. `entered(n)` resolves once `n` calls have come in.
 */
async function loadBlocking(options: Parameters<typeof writeTestPlugin>[1] = {}) {
  const pending: Array<() => void> = []
  let entered = 0
  const watchers: Array<{ count: number; resolve: () => void }> = []
  const plugin = await load(
    corralWat(`
      (data (i32.const 1024) "block")
      (func (export "block") (param i32 i32) (result i64)
        (call $host_call (i32.const 1024) (i32.const 5) (i32.const 0) (i32.const 0)))`),
    {
      ...options,
      hostApi: () =>
        new Promise((resolve) => {
          pending.push(() => resolve('released'))
          entered++
          for (const watcher of watchers) if (entered >= watcher.count) watcher.resolve()
        }),
    },
  )
  return {
    plugin,
    release: () => {
      for (const release of pending.splice(0)) release()
    },
    entered: (count: number) =>
      new Promise<void>((resolve) => (entered >= count ? resolve() : watchers.push({ count, resolve }))),
    /** How many `block` calls have come in so far. */
    get count() {
      return entered
    },
  }
}

/** The failure of `call`, or undefined if `count` calls reach the blocking plugin first. */
function failureUnless(
  call: Promise<unknown>,
  blocking: { entered(count: number): Promise<void> },
  count: number,
): Promise<PluginError | undefined> {
  return Promise.race([failure(call), blocking.entered(count).then(() => undefined)])
}

async function failure(promise: Promise<unknown>): Promise<PluginError> {
  try {
    await promise
  } catch (error) {
    expect(isPluginError(error)).toBe(true)
    return error as PluginError
  }
  throw new Error('expected a failure')
}

/** A data segment and an export that reports `text` as an error. */
const failWith = (name: string, text: string) => `
  (data (i32.const 1024) "${text.replaceAll('"', '\\"')}")
  (func (export "${name}") (param i32 i32) (result i64)
    (call $error (i32.const 1024) (i32.const ${Buffer.byteLength(text)}))
    (i64.const 0))`

describe('createWasmRunner', () => {
  it('echoes JSON through a worker instance, small and large', async () => {
    const plugin = await load(corralWat(''))
    expect(await plugin.call('echo', { hello: 'world', n: [1, 2, 3] })).toEqual({
      hello: 'world',
      n: [1, 2, 3],
    })
    expect(await plugin.call('echo')).toBeNull()
    // Larger than the channel's data area: travels in chunks both ways.
    const big = { text: 'é'.repeat(400_000) }
    expect(((await plugin.call('echo', big)) as typeof big).text === big.text).toBe(true)
    await plugin.shutdown()
  })

  it('round-trips bytes exactly through callBytes, in place and in chunks', async () => {
    const plugin = await load(corralWat(''))
    const inputs = [
      new TextEncoder().encode('{"config":   "x", "id": 12345678901234567890123}'),
      Uint8Array.from({ length: 256 }, (_, i) => i),
      new Uint8Array(600_000).fill(0xfe),
      new Uint8Array(0),
    ]
    for (const input of inputs) {
      const output = await plugin.callBytes('echo', input)
      expect(Buffer.from(output).equals(Buffer.from(input))).toBe(true)
    }
    // Queued in the mailbox behind a running call, bytes travel as they are too.
    const outputs = await Promise.all(
      [1, 2, 3].map((n) => plugin.callBytes('echo', new Uint8Array([n, 0xff]))),
    )
    expect(outputs.map((o) => [...o])).toEqual([
      [1, 0xff],
      [2, 0xff],
      [3, 0xff],
    ])
    await plugin.shutdown()
  })

  it('turns a guest error into a plugin-prefixed code, and plain text into plugin_error', async () => {
    const plugin = await load(
      corralWat(`${failWith('quota', '{"code":"quota","message":"too many"}')}
        (data (i32.const 2048) "it broke")
        (func (export "plain") (param i32 i32) (result i64)
          (call $error (i32.const 2048) (i32.const 8)) (i64.const 0))`),
      { name: 'stats' },
    )
    const quota = await failure(plugin.call('quota', {}))
    expect(quota.code).toBe('stats:quota')
    expect(quota.rawMessage).toBe('too many')
    const plain = await failure(plugin.call('plain', {}))
    expect(plain.code).toBe('plugin_error')
    expect(plain.rawMessage).toBe('it broke')
    // An error is not a trap: the same instance keeps serving.
    expect(await plugin.call('echo', 1)).toBe(1)
  })

  it('refuses functions the module does not export, and ABI functions', async () => {
    const plugin = await load(corralWat(''))
    expect((await failure(plugin.call('nope'))).code).toBe('unimplemented')
    expect((await failure(plugin.call('corral_alloc'))).code).toBe('unimplemented')
  })

  it('serves host calls with the plugin identity, token, chain and deadline, and returns errors to the guest', async () => {
    const contexts: HostCallContext[] = []
    const plugin = await load(
      corralWat(`
        (data (i32.const 1024) "cache.get")
        (func (export "lookup") (param $ptr i32) (param $len i32) (result i64)
          (call $host_call (i32.const 1024) (i32.const 9) (local.get $ptr) (local.get $len)))`),
      {
        name: 'kv',
        hostApi: async (method, args, context) => {
          contexts.push(context)
          if ((args as { key: string }).key === 'secret')
            throw new PluginError('permission_denied', 'not yours')
          return { method, value: (args as { key: string }).key.toUpperCase() }
        },
      },
    )
    const before = Date.now()
    expect(
      await plugin.call('lookup', { key: 'abc' }, { token: 't-1', chain: ['caller'], timeoutMs: 3_000 }),
    ).toEqual({
      ok: { method: 'cache.get', value: 'ABC' },
    })
    expect(contexts[0]).toMatchObject({ plugin: 'kv', token: 't-1', chain: ['caller'] })
    expect(contexts[0]?.deadline).toBeGreaterThanOrEqual(before + 3_000)
    expect(contexts[0]?.deadline).toBeLessThanOrEqual(Date.now() + 3_000)
    expect(await plugin.call('lookup', { key: 'secret' })).toEqual({
      error: { code: 'permission_denied', message: 'not yours' },
    })
  })

  it('passes host-call payloads larger than the channel both ways', async () => {
    const plugin = await load(
      corralWat(`
        (data (i32.const 1024) "blob.echo")
        (func (export "relay") (param $ptr i32) (param $len i32) (result i64)
          (call $host_call (i32.const 1024) (i32.const 9) (local.get $ptr) (local.get $len)))`),
      { hostApi: async (_method, args) => args },
    )
    const big = { data: 'x'.repeat(700_000) }
    expect(((await plugin.call('relay', big)) as { ok: typeof big }).ok.data === big.data).toBe(true)
  })

  it('runs two CPU-bound calls on a pool of 2 in about the time of one', async () => {
    const plugin = await load(
      corralWat(`
        (func (export "spin") (param i32 i32) (result i64)
          (local $i i32)
          (loop $again
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br_if $again (i32.lt_u (local.get $i) (i32.const 400000000))))
          (i64.const 0))`),
      { maxInstances: 2 },
    )
    // Both instances exist before timing starts.
    await Promise.all([plugin.call('echo', 1), plugin.call('echo', 2)])
    const timed = async (calls: number) => {
      const t0 = performance.now()
      await Promise.all(Array.from({ length: calls }, () => plugin.call('spin')))
      return performance.now() - t0
    }
    // Run one after the other, two calls take twice as long; in parallel, about as long as one.
    // Up to three tries, so that a moment of contention from elsewhere on the machine is not a failure.
    const ratios: number[] = []
    for (let attempt = 0; attempt < 3 && !ratios.some((r) => r < 1.6); attempt++) {
      const one = await timed(1)
      ratios.push((await timed(2)) / one)
    }
    expect(Math.min(...ratios)).toBeLessThan(1.6)
  })

  it('makes a caller wait for a busy pool at most wait_timeout, then resource_exhausted', async () => {
    const { plugin, release } = await loadBlocking({ waitTimeoutMs: 100 })
    const blocked = plugin.call('block')
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect((await failure(plugin.call('echo', 1))).code).toBe('resource_exhausted')
    // A waiting caller who cancels does not wait for the pool.
    const controller = new AbortController()
    const waiting = plugin.call('echo', 1, { signal: controller.signal })
    controller.abort()
    expect((await failure(waiting)).code).toBe('canceled')
    release()
    await blocked
    expect(await plugin.call('echo', 2)).toBe(2)
  })

  it('matches every result to its caller with many calls in flight (calls queue behind running ones)', async () => {
    const plugin = await load(
      corralWat(`
        (data (i32.const 1024) "relay")
        (func (export "relay") (param $ptr i32) (param $len i32) (result i64)
          (call $host_call (i32.const 1024) (i32.const 5) (local.get $ptr) (local.get $len)))`),
      { maxInstances: 2, limits: { memory_mb: 64 }, hostApi: async (_method, args) => args },
    )
    // Half the lanes make a host call in every call: host calls of queued calls interleave too.
    const lanes = Array.from({ length: 16 }, async (_, lane) => {
      for (let i = 0; i < 300; i++) {
        if (lane % 2 === 0) expect(await plugin.call('echo', { lane, i })).toEqual({ lane, i })
        else expect(await plugin.call('relay', { lane, i })).toEqual({ ok: { lane, i } })
      }
    })
    await Promise.all(lanes)
  })

  it('sizes the pool by the grant: a manifest asking for 8 instances gets max_instances 2', async () => {
    const blocking = await loadBlocking({ maxInstances: 8, waitTimeoutMs: 300, limits: { max_instances: 2 } })
    const calls = [1, 2, 3].map(() => blocking.plugin.call('block', null, { timeoutMs: 10_000 }))
    // Two instances hold the first two calls; the third waits for one and none frees up.
    const third = await failureUnless(calls[2] as Promise<unknown>, blocking, 3)
    expect(third?.code).toBe('resource_exhausted')
    expect(third?.rawMessage).toMatch(/max_instances 2\b/)
    // The second instance may still be starting on a loaded machine; no third one ever does.
    await blocking.entered(2)
    expect(blocking.count).toBe(2)
    blocking.release()
    expect(await Promise.all(calls.slice(0, 2))).toEqual([{ ok: 'released' }, { ok: 'released' }])
  })

  it('bounds calls in flight by max_concurrent_calls and waiting ones by max_queued_calls, per plugin', async () => {
    const blocking = await loadBlocking({
      maxInstances: 4,
      waitTimeoutMs: 300,
      limits: { max_concurrent_calls: 1, max_queued_calls: 1 },
    })
    const other = await load(corralWat(''), { name: 'other-plugin' })
    const running = blocking.plugin.call('block', null, { timeoutMs: 10_000 })
    const waiting = blocking.plugin.call('block', null, { timeoutMs: 10_000 })
    // The queue holds one: the next call is refused at once, naming the limit.
    const refused = await failureUnless(blocking.plugin.call('block'), blocking, 2)
    expect([refused?.code, refused?.rawMessage]).toEqual([
      'resource_exhausted',
      "the plugin's call queue is full (max_queued_calls 1)",
    ])
    // The burst stays at its plugin: another one serves meanwhile.
    expect(await other.call('echo', 'still serving')).toBe('still serving')
    // With one call in flight allowed, the waiting call never gets one of the idle instances.
    const waited = await failureUnless(waiting, blocking, 2)
    expect(waited?.code).toBe('resource_exhausted')
    await blocking.entered(1)
    expect(blocking.count).toBe(1)
    blocking.release()
    expect(await running).toEqual({ ok: 'released' })
    expect(await blocking.plugin.call('echo', 'after')).toBe('after')
  })

  it('runs a call queued behind one that times out on a fresh instance', async () => {
    const plugin = await load(
      corralWat(`(func (export "forever") (param i32 i32) (result i64) (loop $l (br $l)) (i64.const 0))`),
    )
    const stuck = plugin.call('forever', null, { timeoutMs: 300 })
    const behind = plugin.call('echo', 'behind', { timeoutMs: 5_000 })
    expect((await failure(stuck)).code).toBe('deadline_exceeded')
    expect(await behind).toBe('behind')
  })

  it('fails a queued call whose instance stops after its deadline passed with deadline_exceeded, not unavailable', async () => {
    const blocking = await loadBlocking()
    const controller = new AbortController()
    const running = failure(blocking.plugin.call('block', null, { signal: controller.signal }))
    // A few microtask turns: the running call is sent, and the next one queues behind it.
    for (let turn = 0; turn < 5; turn++) await null
    const deadline = Date.now() + 100
    const behind = failure(blocking.plugin.call('echo', 'behind', { timeoutMs: 100 }))
    // Past the queued call's deadline before its timer can run (this thread is held), the running
    // call is canceled: the instance stops with the queued call never started, and out of time.
    while (Date.now() <= deadline) {
      // held on purpose
    }
    controller.abort()
    expect((await running).code).toBe('canceled')
    expect((await behind).code).toBe('deadline_exceeded')
    expect(await blocking.plugin.call('echo', 'after')).toBe('after')
  })

  it('fails a queued call at its own deadline without stopping the call it waits behind', async () => {
    const { plugin, release } = await loadBlocking()
    const blocked = plugin.call('block', null, { timeoutMs: 5_000 })
    const queued = failure(plugin.call('echo', 'late', { timeoutMs: 100 }))
    const controller = new AbortController()
    const canceled = failure(plugin.call('echo', 'canceled', { signal: controller.signal }))
    controller.abort()
    expect((await queued).code).toBe('deadline_exceeded')
    expect((await canceled).code).toBe('canceled')
    release()
    expect(await blocked).toEqual({ ok: 'released' })
    expect(await plugin.call('echo', 'after')).toBe('after')
  })

  it('cancels a running call through its AbortSignal, and the next call works', async () => {
    const plugin = await load(
      corralWat(`(func (export "forever") (param i32 i32) (result i64) (loop $l (br $l)) (i64.const 0))`),
    )
    const controller = new AbortController()
    const call = plugin.call('forever', null, { signal: controller.signal })
    setTimeout(() => controller.abort(), 50)
    expect((await failure(call)).code).toBe('canceled')
    expect(await plugin.call('echo', 'after')).toBe('after')
  })

  it('takes the registration from the manifest without corral_register, and from the guest with it', async () => {
    const fromManifest = await load(corralWat(''), { name: 'plain-plugin' })
    expect((await fromManifest.register()).name).toBe('plain-plugin')
    const registration = JSON.stringify({
      name: 'self-described',
      version: '0.1.0',
      description: 'from the guest',
    })
    const test = await writeTestPlugin(
      corralWat(`
        (data (i32.const 1024) "${registration.replaceAll('"', '\\"')}")
        (func (export "corral_register") (param i32 i32) (result i64)
          (call $pack (i32.const 1024) (i32.const ${registration.length})))`),
      { name: 'self-described' },
    )
    cleanups.push(test)
    const plugin = await runner.load(test)
    expect(await plugin.register()).toMatchObject({ name: 'self-described', description: 'from the guest' })
  })

  it('runs corral_init with the config on every instance before it serves, and corral_shutdown at the end', async () => {
    const seen: unknown[] = []
    const plugin = await load(
      corralWat(`
        (data (i32.const 1024) "init")
        (global $config_ptr (mut i32) (i32.const 0))
        (global $config_len (mut i32) (i32.const 0))
        (func (export "corral_init") (param $ptr i32) (param $len i32) (result i64)
          (global.set $config_ptr (local.get $ptr))
          (global.set $config_len (local.get $len))
          (i64.const 0))
        (func (export "config") (param i32 i32) (result i64)
          (call $pack (global.get $config_ptr) (global.get $config_len)))
        (func (export "corral_shutdown") (param i32 i32) (result i64)
          (drop (call $host_call (i32.const 1024) (i32.const 4) (i32.const 0) (i32.const 0)))
          (i64.const 0))`),
      { maxInstances: 2, hostApi: async (method) => seen.push(method) },
    )
    await plugin.init({ greeting: 'hi' })
    const both = await Promise.all([plugin.call('config'), plugin.call('config')])
    expect(both).toEqual([{ config: { greeting: 'hi' } }, { config: { greeting: 'hi' } }])
    await plugin.shutdown()
    expect(seen).toEqual(['init', 'init'])
    expect((await failure(plugin.call('config'))).code).toBe('unavailable')
  })

  it('reads guest pointers at or above 2 GiB as unsigned: input, output, host_call, log and error', async () => {
    const above = 0x8000_0000
    const text = (at: number, value: string) => `(data (i32.const ${at}) "${value.replaceAll('"', '\\"')}")`
    const errorJson = JSON.stringify({ code: 'high', message: 'failed from above 2 GiB' })
    const seen: Array<[string, unknown]> = []
    const plugin = await load(
      `(module
        (import "corral" "host_call" (func $host_call (param i32 i32 i32 i32) (result i64)))
        (import "corral" "error" (func $error (param i32 i32)))
        (import "corral" "log" (func $log (param i32 i32 i32)))
        ;; 2 GiB and 2 pages: the data and the heap both live above 2^31.
        (memory (export "memory") 32770)
        (global $heap (mut i32) (i32.const ${above + 0x1_0000}))
        ${text(above, 'relay')}
        ${text(above + 0x100, 'hello from above 2 GiB')}
        ${text(above + 0x200, errorJson)}
        (func (export "corral_abi_version") (result i32) (i32.const 1))
        (func (export "corral_alloc") (param $size i32) (result i32)
          (local $ptr i32)
          (local.set $ptr (global.get $heap))
          (global.set $heap (i32.add (local.get $ptr) (local.get $size)))
          (local.get $ptr))
        (func $pack (param $ptr i32) (param $len i32) (result i64)
          (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32)) (i64.extend_i32_u (local.get $len))))
        (func (export "echo") (param i32 i32) (result i64) (call $pack (local.get 0) (local.get 1)))
        (func (export "relay") (param i32 i32) (result i64)
          (call $host_call (i32.const ${above}) (i32.const 5) (local.get 0) (local.get 1)))
        (func (export "shout") (param i32 i32) (result i64)
          (call $log (i32.const 2) (i32.const ${above + 0x100}) (i32.const 22))
          (i64.const 0))
        (func (export "fail") (param i32 i32) (result i64)
          (call $error (i32.const ${above + 0x200}) (i32.const ${errorJson.length}))
          (i64.const 0)))`,
      {
        name: 'high-memory',
        limits: { memory_mb: 2049 },
        hostApi: async (method, args) => {
          seen.push([method, args])
          return { method, args }
        },
      },
    )
    expect(await plugin.call('echo', { from: 'above' })).toEqual({ from: 'above' })
    expect(await plugin.call('relay', 'x')).toEqual({ ok: { method: 'relay', args: 'x' } })
    expect(await plugin.call('shout')).toBeNull()
    expect(seen.at(-1)).toEqual(['log', { level: 'info', message: 'hello from above 2 GiB' }])
    const error = await failure(plugin.call('fail'))
    expect([error.code, error.rawMessage]).toEqual(['high-memory:high', 'failed from above 2 GiB'])
    await plugin.shutdown()
  })

  it('reads WASI pointers at or above 2 GiB as unsigned', async () => {
    const above = 0x8000_0000
    const plugin = await load(
      `(module
        (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
        (memory (export "memory") 32770)
        (data (i32.const 16) "true")
        (data (i32.const 32) "false")
        (func (export "corral_abi_version") (result i32) (i32.const 1))
        (func (export "corral_alloc") (param i32) (result i32) (i32.const 1024))
        (func $pack (param $ptr i32) (param $len i32) (result i64)
          (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32)) (i64.extend_i32_u (local.get $len))))
        ;; The clock written above 2 GiB, where the guest asked: true; an errno or nothing written: false.
        (func (export "clock") (param i32 i32) (result i64)
          (if (result i64)
            (i32.and
              (i32.eqz (call $clock (i32.const 0) (i64.const 1000) (i32.const ${above})))
              (i64.ne (i64.load (i32.const ${above})) (i64.const 0)))
            (then (call $pack (i32.const 16) (i32.const 4)))
            (else (call $pack (i32.const 32) (i32.const 5))))))`,
      { name: 'high-wasi', limits: { memory_mb: 2049 } },
    )
    expect(await plugin.call('clock')).toBe(true)
    await plugin.shutdown()
  })

  it('refuses arguments JSON cannot hold (a BigInt, a cycle, a function) with invalid_argument', async () => {
    const plugin = await load(corralWat(''))
    const cycle: Record<string, unknown> = {}
    cycle.self = cycle
    for (const args of [{ n: 1n }, cycle, () => 1]) {
      const error = await failure(plugin.call('echo', args))
      expect([error.code, error.plugin]).toEqual(['invalid_argument', 'test-plugin'])
    }
    expect(await plugin.call('echo', 2)).toBe(2)
  })

  it('is not ready after a failed init: calls fail fast with unavailable, without re-running it, until an init succeeds', async () => {
    const inits: string[] = []
    const test = await writeTestPlugin(
      corralWat(`
        (data (i32.const 1024) "init")
        ;; Fails on the empty config, {"config":{}} (13 bytes); succeeds on any other.
        (func (export "corral_init") (param i32 i32) (result i64)
          (drop (call $host_call (i32.const 1024) (i32.const 4) (i32.const 0) (i32.const 0)))
          (if (i32.eq (local.get 1) (i32.const 13)) (then (call $error (i32.const 1024) (i32.const 4))))
          (i64.const 0))`),
      { maxInstances: 2, hostApi: async (method) => inits.push(method) },
    )
    cleanups.push(test)
    const plugin = await runner.load(test)
    expect((await failure(plugin.init({}))).code).toBe('plugin_error')
    const health = await plugin.health()
    expect([health.ready, health.message]).toEqual([false, 'init() failed: init'])
    const refused = await failure(plugin.call('echo', 1))
    expect([refused.code, refused.rawMessage]).toEqual(['unavailable', 'init() failed: init'])
    expect(inits).toEqual(['init'])
    await plugin.init({ greeting: 'hi' })
    expect(await plugin.call('echo', 1)).toBe(1)
    expect((await plugin.health()).ready).toBe(true)
    await plugin.shutdown()
  })

  it('reports health from corral_health, or readiness without it', async () => {
    const health = JSON.stringify({ ready: false, message: 'warming up' })
    const plugin = await load(
      corralWat(`
        (data (i32.const 1024) "${health.replaceAll('"', '\\"')}")
        (func (export "corral_health") (param i32 i32) (result i64) (call $pack (i32.const 1024) (i32.const ${health.length})))`),
    )
    expect(await plugin.health()).toEqual({ ready: false, message: 'warming up' })
    const simple = await load(corralWat(''))
    expect((await simple.health()).ready).toBe(true)
    await simple.shutdown()
    expect((await simple.health()).ready).toBe(false)
  })
})
