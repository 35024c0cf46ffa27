import type { EffectiveGrant, ResourceLimits } from '@corral/types'
import { afterAll, describe, expect, it } from 'vitest'
import { failure } from '../testing/plugin-failure.js'
import { corralWat, type TestPluginOptions, writeTestPlugin } from '../testing/wat-plugin.js'
import type { WasmPlugin } from './wasm-plugin.js'
import { createWasmRunner } from './wasm-runner.js'

/**
 * A changed grant holds from the next call on: for each limit, a call that passed under the old
 * grant fails under the narrowed one, with the limit's own code.
 */
const runner = createWasmRunner({ logger: { log() {} } })
const removals: (() => Promise<void>)[] = []
afterAll(async () => {
  await runner.close()
  await Promise.all(removals.map((remove) => remove()))
})

/**
 * `slow` makes one host call, which the host answers after `hostDelayMs`; `big` one whose arguments
 * are 8 KiB of JSON (a string).
 */
const hostDelayMs = 300
const guest = corralWat(`
  (data (i32.const 1024) "log")
  (data (i32.const 2048) "\\"${'x'.repeat(8190)}\\"")
  (func (export "slow") (param i32 i32) (result i64)
    (call $host_call (i32.const 1024) (i32.const 3) (i32.const 0) (i32.const 0)))
  (func (export "big") (param i32 i32) (result i64)
    (call $host_call (i32.const 1024) (i32.const 3) (i32.const 2048) (i32.const 8192)))`)

async function load(options: TestPluginOptions = {}): Promise<{ plugin: WasmPlugin; grant: EffectiveGrant }> {
  const test = await writeTestPlugin(guest, {
    hostApi: () => new Promise((resolve) => setTimeout(() => resolve('done'), hostDelayMs)),
    ...options,
  })
  removals.push(test.remove)
  const plugin = (await runner.load(test)) as WasmPlugin
  await plugin.init({})
  return { plugin, grant: test.grant }
}

function narrowed(grant: EffectiveGrant, limits: Partial<ResourceLimits>): EffectiveGrant {
  return { ...grant, limits: { ...grant.limits, ...limits } }
}

describe('updateGrant', () => {
  it('call_timeout: a call that fitted runs past the new one: deadline_exceeded', async () => {
    const { plugin, grant } = await load()
    expect(await plugin.call('slow')).toEqual({ ok: 'done' })
    plugin.updateGrant(narrowed(grant, { call_timeout: 100 }))
    expect((await failure(plugin.call('slow'))).code).toBe('deadline_exceeded')
  })

  it('max_output_bytes: an output that fitted is too large now: resource_exhausted', async () => {
    const { plugin, grant } = await load()
    const text = 'x'.repeat(2_000)
    expect(await plugin.call('echo', text)).toBe(text)
    plugin.updateGrant(narrowed(grant, { max_output_bytes: 1_000 }))
    expect((await failure(plugin.call('echo', text))).code).toBe('resource_exhausted')
  })

  it('memory_mb: an input that fitted cannot be allocated under the new cap: resource_exhausted', async () => {
    const { plugin, grant } = await load({ limits: { memory_mb: 8, max_output_bytes: 4 << 20 } })
    const data = 'x'.repeat(3 << 20)
    expect(await plugin.call('echo', data)).toBe(data)
    plugin.updateGrant(narrowed(grant, { memory_mb: 2 }))
    expect((await failure(plugin.call('echo', data))).code).toBe('resource_exhausted')
  })

  it("memory_mb below the module's initial memory: the new instances, and so the calls, fail with load_failed", async () => {
    const { plugin, grant } = await load()
    expect(await plugin.call('echo', 'fits')).toBe('fits')
    // The module starts with 2 pages (128 KiB); 0.1 MiB holds 1.
    plugin.updateGrant(narrowed(grant, { memory_mb: 0.1 }))
    expect((await failure(plugin.call('echo', 'fits'))).code).toBe('load_failed')
  })

  it('max_host_call_bytes: host call arguments that fitted are refused to the guest: resource_exhausted', async () => {
    const { plugin, grant } = await load()
    expect(await plugin.call('big')).toEqual({ ok: 'done' })
    plugin.updateGrant(narrowed(grant, { max_host_call_bytes: 4_096 }))
    const answer = (await plugin.call('big')) as { error?: { code: string; message: string } }
    expect(answer.error?.code).toBe('resource_exhausted')
    expect(answer.error?.message).toContain('max_host_call_bytes 4096')
  })

  it('max_queued_calls: a call that waited for a free instance is refused at once: resource_exhausted', async () => {
    const { plugin, grant } = await load()
    const [first, second] = await Promise.all([plugin.call('slow'), plugin.call('slow')])
    expect([first, second]).toEqual([{ ok: 'done' }, { ok: 'done' }])
    plugin.updateGrant(narrowed(grant, { max_queued_calls: 0 }))
    const running = plugin.call('slow')
    const refused = await failure(plugin.call('slow'))
    expect([refused.code, refused.rawMessage]).toEqual([
      'resource_exhausted',
      "the plugin's call queue is full (max_queued_calls 0)",
    ])
    expect(await running).toEqual({ ok: 'done' })
  })

  it('max_concurrent_calls: the second of two concurrent calls waits, and gives up at its wait', async () => {
    const { plugin, grant } = await load({ maxInstances: 2, waitTimeoutMs: 100 })
    const [first, second] = await Promise.all([plugin.call('slow'), plugin.call('slow')])
    expect([first, second]).toEqual([{ ok: 'done' }, { ok: 'done' }])
    plugin.updateGrant(narrowed(grant, { max_concurrent_calls: 1 }))
    const running = plugin.call('slow')
    const refused = await failure(plugin.call('slow'))
    expect(refused.code).toBe('resource_exhausted')
    expect(refused.rawMessage).toContain('max_concurrent_calls 1')
    expect(await running).toEqual({ ok: 'done' })
  })

  it('max_instances: the pool shrinks, so a second concurrent call finds no instance; and grows back', async () => {
    const { plugin, grant } = await load({
      maxInstances: 2,
      waitTimeoutMs: 100,
      limits: { max_instances: 2 },
    })
    // Two instances are started and left idle.
    expect(await Promise.all([plugin.call('slow'), plugin.call('slow')])).toEqual([
      { ok: 'done' },
      { ok: 'done' },
    ])
    plugin.updateGrant(narrowed(grant, { max_instances: 1 }))
    const running = plugin.call('slow')
    const refused = await failure(plugin.call('slow'))
    expect(refused.code).toBe('resource_exhausted')
    expect(refused.rawMessage).toContain('max_instances 1')
    expect(await running).toEqual({ ok: 'done' })
    plugin.updateGrant(grant)
    expect(await Promise.all([plugin.call('slow'), plugin.call('slow')])).toEqual([
      { ok: 'done' },
      { ok: 'done' },
    ])
  })

  it('a call already running keeps the limits it started with', async () => {
    const { plugin, grant } = await load()
    const running = plugin.call('slow')
    await new Promise((resolve) => setTimeout(resolve, 50))
    plugin.updateGrant(narrowed(grant, { call_timeout: 100, max_output_bytes: 10 }))
    expect(await running).toEqual({ ok: 'done' })
    expect((await failure(plugin.call('slow'))).code).toBe('deadline_exceeded')
  })
})
