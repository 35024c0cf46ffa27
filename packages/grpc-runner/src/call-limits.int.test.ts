import { isPluginError, type Plugin } from '@corral/types'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createGrpcRunner } from './grpc-runner.js'
import {
  bareFixturePolicy,
  fixtureManifest,
  fixturesDir,
  grantFor,
  memoryLogger,
  recordingHost,
  type TestPolicy,
} from './testing/support.js'

const host = recordingHost()
const runner = createGrpcRunner({ logger: memoryLogger().logger })

async function start(name: string, script: string, args: string[], policy: TestPolicy = {}): Promise<Plugin> {
  const manifest = fixtureManifest(name, script, args)
  const grant = grantFor(manifest, { init_timeout: 5000, call_timeout: 30_000 }, policy)
  const plugin = await runner.load({ manifest, dir: fixturesDir, grant, hostApi: host.handler })
  await plugin.register()
  await plugin.init({})
  return plugin
}

const outcome = (work: Promise<unknown>) =>
  work.then(
    () => 'ok',
    (error: unknown) => (isPluginError(error) ? error : 'not a PluginError'),
  )

describe('a burst of calls at one plugin stays at that plugin', () => {
  let burst: Plugin
  let bystander: Plugin

  beforeAll(async () => {
    // Unary calls only, as a stock go-plugin plugin: each call its own RPC.
    burst = await start('burst', 'unary-plugin.mjs', ['burst'], bareFixturePolicy)
    bystander = await start('steady', 'sdk-plugin.mjs', ['well', 'steady'])
  })
  afterAll(() => runner.close())

  it('runs max_concurrent_calls, queues max_queued_calls, refuses the rest at once; the other plugin serves throughout', async () => {
    // The default limits: 64 calls in flight, 256 waiting.
    const calls = Array.from({ length: 2000 }, () => outcome(burst.call('slow', { ms: 100 })))
    let steadyDone = false
    const steady = (async () => {
      const results: string[] = []
      while (!steadyDone || results.length < 20) {
        results.push(await outcome(bystander.call('echo', results.length, { timeoutMs: 2000 })).then(String))
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
      return results
    })()
    const results = await Promise.all(calls)
    steadyDone = true
    const refused = results.filter((r) => r !== 'ok')
    expect(results.filter((r) => r === 'ok')).toHaveLength(64 + 256)
    expect(refused).toHaveLength(2000 - 64 - 256)
    for (const error of refused) {
      expect(isPluginError(error) && error.code).toBe('resource_exhausted')
      expect(isPluginError(error) && error.message).toContain('max_queued_calls 256')
    }
    expect(new Set(await steady)).toEqual(new Set(['ok']))
    // The slots came back: the plugin takes calls again.
    expect(await burst.call('echo', 'after')).toBe('after')
  })

  it('a queued call keeps its deadline and its abort signal', async () => {
    const running = Array.from({ length: 64 }, () => outcome(burst.call('slow', { ms: 1500 })))
    const timedOut = outcome(burst.call('echo', 1, { timeoutMs: 200 }))
    const controller = new AbortController()
    const aborted = outcome(burst.call('echo', 2, { signal: controller.signal }))
    controller.abort()
    const late = await timedOut
    expect(isPluginError(late) && late.code).toBe('deadline_exceeded')
    expect(isPluginError(late) && late.message).toContain('max_concurrent_calls')
    const canceled = await aborted
    expect(isPluginError(canceled) && canceled.code).toBe('canceled')
    // A queued call that waits within its deadline runs once a slot frees.
    expect(await burst.call('echo', 3)).toBe(3)
    expect(new Set(await Promise.all(running))).toEqual(new Set(['ok']))
  })
})
