import { isPluginError } from '@corral/types'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createGrpcRunner, type GrpcPlugin } from './grpc-runner.js'
import { eventually, examplePlugin, memoryLogger, processExists, recordingHost } from './testing/support.js'

describe('createGrpcRunner with the hello-grpc example (TypeScript, plugin SDK)', () => {
  const host = recordingHost()
  const { logger } = memoryLogger()
  const runner = createGrpcRunner({ hostVersion: '0.1.0', logger })
  let plugin: GrpcPlugin

  beforeAll(async () => {
    const { manifest, dir, grant } = await examplePlugin('hello-grpc')
    plugin = await runner.load({ manifest, dir, grant, hostApi: host.handler })
  })
  afterAll(() => runner.close())

  it('registers, initialises with its config and calls the host back during init', async () => {
    const registration = await plugin.register()
    expect(registration.name).toBe('hello-grpc')
    expect(registration.routes.map((r) => r.handler)).toContain('greetRoute')
    await plugin.init({ greeting: 'Hi' })
    const initCall = host.calls.find((c) => c.method === 'db.exec')
    expect(initCall?.context.plugin).toBe('hello-grpc')
    expect(initCall?.context.token).toMatch(/init/)
  })

  it('calls a function that calls the host back, with the call token and deadline', async () => {
    const before = host.calls.length
    const out = await plugin.call(
      'greet',
      { name: 'Ada' },
      { token: 'req-42', timeoutMs: 3000, chain: ['caller'] },
    )
    expect(out).toEqual({ text: 'Hi, Ada!', count: 1 })
    const made = host.calls.slice(before)
    expect(made.map((c) => c.method)).toEqual(['cache.get', 'cache.set'])
    for (const c of made) {
      expect(c.context).toMatchObject({ plugin: 'hello-grpc', token: 'req-42', chain: ['caller'] })
      expect(c.context.deadline).toBeGreaterThan(Date.now())
    }
    expect(await plugin.call('greet', { name: 'Bo' })).toEqual({ text: 'Hi, Bo!', count: 2 })
  })

  it('keeps many calls in flight on one stream', async () => {
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => plugin.call('echo', { i })))
    expect(results).toEqual(Array.from({ length: 50 }, (_, i) => ({ i })))
  })

  it('says plainly when the entry was never built', async () => {
    const { manifest, dir, grant } = await examplePlugin('hello-grpc')
    const unbuilt = { ...manifest, entry: { node: 'dist/not-built.js', args: [], env: [] } }
    const error = await runner
      .load({ manifest: unbuilt, dir, grant, hostApi: host.handler })
      .catch((e: unknown) => e)
    expect(isPluginError(error) && error.code).toBe('load_failed')
    expect(isPluginError(error) && error.rawMessage).toBe(
      'no entry at dist/not-built.js (was the plugin built?)',
    )
  })

  it('never lets a caller run a call past the grant call_timeout (2s here)', async () => {
    const error = await plugin.call('slow', { ms: 4000 }, { timeoutMs: 60_000 }).catch((e: unknown) => e)
    expect(isPluginError(error) && error.code).toBe('deadline_exceeded')
  })

  it('fails a call past its deadline with deadline_exceeded and keeps serving', async () => {
    const error = await plugin.call('slow', { ms: 5000 }, { timeoutMs: 100 }).catch((e: unknown) => e)
    expect(isPluginError(error) && error.code).toBe('deadline_exceeded')
    expect(await plugin.call('echo', 1)).toBe(1)
  })

  it('keeps each call to its own deadline when a shorter one starts after a longer one', async () => {
    const settled: string[] = []
    const long = plugin.call('slow', { ms: 5000 }, { timeoutMs: 1500 }).catch((e: unknown) => {
      settled.push('long')
      return e
    })
    const short = plugin.call('slow', { ms: 5000 }, { timeoutMs: 100 }).catch((e: unknown) => {
      settled.push('short')
      return e
    })
    const [longError, shortError] = await Promise.all([long, short])
    expect(settled).toEqual(['short', 'long'])
    for (const error of [longError, shortError]) {
      expect(isPluginError(error) && error.code).toBe('deadline_exceeded')
    }
    expect(await plugin.call('echo', 2)).toBe(2)
  })

  it('cancels a call on abort with canceled', async () => {
    const controller = new AbortController()
    const pending = plugin.call('slow', { ms: 5000 }, { signal: controller.signal })
    setTimeout(() => controller.abort(), 50)
    const error = await pending.catch((e: unknown) => e)
    expect(isPluginError(error) && error.code).toBe('canceled')
  })

  it('passes the plugin’s own error codes and refuses unknown functions', async () => {
    const own = await plugin.call('greet', { name: '' }).catch((e: unknown) => e)
    expect(isPluginError(own) && own.code).toBe('hello-grpc:empty_name')
    const missing = await plugin.call('nope').catch((e: unknown) => e)
    expect(isPluginError(missing) && missing.code).toBe('unimplemented')
  })

  it('refuses a result above max_output_bytes with resource_exhausted', async () => {
    const { manifest, dir, grant } = await examplePlugin('hello-grpc', { max_output_bytes: 64 })
    const small = await runner.load({ manifest, dir, grant, hostApi: host.handler })
    try {
      await small.register()
      await small.init({})
      const error = await small.call('echo', { text: 'x'.repeat(100) }).catch((e: unknown) => e)
      expect(isPluginError(error) && error.code).toBe('resource_exhausted')
    } finally {
      await small.shutdown()
    }
  })

  it('reports health and shuts down, leaving no process', async () => {
    expect(await plugin.health()).toMatchObject({ ready: true })
    const pid = plugin.pid as number
    expect(processExists(pid)).toBe(true)
    await plugin.shutdown()
    await eventually(() => !processExists(pid), 5000, 'the plugin process to exit')
    const error = await plugin.call('echo', 1).catch((e: unknown) => e)
    expect(isPluginError(error) && error.code).toBe('unavailable')
  })
})
