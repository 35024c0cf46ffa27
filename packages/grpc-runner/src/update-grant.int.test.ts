import type { EffectiveGrant, ResourceLimits, RuntimeStateChange } from '@corral/types'
import { isPluginError } from '@corral/types'
import { afterAll, describe, expect, it } from 'vitest'
import { createGrpcRunner } from './grpc-runner.js'
import {
  bareFixturePolicy,
  fixtureManifest,
  fixturesDir,
  grantFor,
  memoryLogger,
  nextState,
  recordingHost,
  type TestPolicy,
} from './testing/support.js'

// A changed grant holds from the next call on, for a real plugin process: each limit is narrowed
// after a call that passed, and the same call then fails with the limit's code.
const logs = memoryLogger()
const host = recordingHost()
const runner = createGrpcRunner({
  logger: logs.logger,
  supervision: { memoryIntervalMs: 100 },
  restart: { initialBackoffMs: 50 },
})
afterAll(() => runner.close())

const roomy: Partial<ResourceLimits> = { init_timeout: 5000, call_timeout: 30_000 }

/** Starts a fixture plugin; the SDK fixture takes its name second, the unary one first. */
async function start(script: string, args: string[], policy: TestPolicy = {}, limits = roomy) {
  const name = script === 'sdk-plugin.mjs' ? (args[1] ?? 'fixture') : (args[0] ?? 'unary')
  const manifest = fixtureManifest(name, script, args)
  const grant = grantFor(manifest, limits, policy)
  const plugin = await runner.load({ manifest, dir: fixturesDir, grant, hostApi: host.handler })
  await plugin.register()
  await plugin.init({})
  /** The plugin's grant with `changed` limits, applied live. */
  const narrow = (changed: Partial<ResourceLimits>): EffectiveGrant => {
    const next = { ...grant, limits: { ...grant.limits, ...changed } }
    plugin.updateGrant(next)
    return next
  }
  return { plugin, narrow }
}

const failure = (work: Promise<unknown>) =>
  work.then(
    () => 'passed',
    (error: unknown) => (isPluginError(error) ? error.code : 'not a PluginError'),
  )

describe('updateGrant on a gRPC plugin', () => {
  it('call_timeout: a call that fit now runs out of time', async () => {
    const { plugin, narrow } = await start('sdk-plugin.mjs', ['well', 'timeout'])
    expect(await plugin.call('slow', { ms: 400 })).toBe('done')
    narrow({ call_timeout: 100 })
    expect(await failure(plugin.call('slow', { ms: 400 }))).toBe('deadline_exceeded')
    // A caller still cannot lengthen a call past the new ceiling.
    expect(await failure(plugin.call('slow', { ms: 400 }, { timeoutMs: 10_000 }))).toBe('deadline_exceeded')
  })

  it('init_timeout: an init that fit now runs out of time', async () => {
    const { plugin, narrow } = await start('sdk-plugin.mjs', ['well', 'init'])
    await plugin.init({ initMs: 400 })
    narrow({ init_timeout: 100 })
    expect(await failure(plugin.init({ initMs: 400 }))).toBe('deadline_exceeded')
  })

  it('shutdown_timeout: a plugin that ignores Shutdown is stopped after the new, shorter bound', async () => {
    const { plugin, narrow } = await start(
      'sdk-plugin.mjs',
      ['ignore-stop', 'stubborn'],
      {},
      {
        ...roomy,
        shutdown_timeout: 60_000,
      },
    )
    const pid = (await plugin.call('pid')) as number
    narrow({ shutdown_timeout: 300 })
    // Under the load-time bound this would wait a minute: the test's own timeout fails it.
    await plugin.shutdown()
    expect(plugin.state).toBe('stopped')
    expect(() => process.kill(pid, 0)).toThrow()
  })

  it('max_output_bytes: a result that fit is now refused', async () => {
    const { plugin, narrow } = await start('sdk-plugin.mjs', ['well', 'output'])
    const big = 'x'.repeat(10_000)
    expect(await plugin.call('echo', big)).toBe(big)
    narrow({ max_output_bytes: 1000 })
    expect(await failure(plugin.call('echo', big))).toBe('resource_exhausted')
    expect(await failure(plugin.callBytes('echoBytes', new Uint8Array(10_000)))).toBe('resource_exhausted')
    expect(await plugin.call('echo', 'small')).toBe('small')
  })

  it('max_host_call_bytes: a host call that fit is now refused', async () => {
    const { plugin, narrow } = await start('unary-plugin.mjs', ['hostcalls'], bareFixturePolicy)
    expect(await plugin.call('big-log', { bytes: 5000 })).toEqual({ result: {} })
    narrow({ max_host_call_bytes: 1000 })
    const answer = (await plugin.call('big-log', { bytes: 5000 })) as { error?: { code: string } }
    expect(answer.error?.code).toBe('resource_exhausted')
    expect(await plugin.call('big-log', { bytes: 100 })).toEqual({ result: {} })
  })

  it('max_concurrent_calls and max_queued_calls: the limiter takes the new bounds at once', async () => {
    const { plugin, narrow } = await start('sdk-plugin.mjs', ['well', 'limits'])
    const two = [plugin.call('slow', { ms: 300 }), plugin.call('slow', { ms: 300 })]
    expect(await Promise.all(two)).toEqual(['done', 'done'])
    narrow({ max_concurrent_calls: 1, max_queued_calls: 0 })
    const first = failure(plugin.call('slow', { ms: 300 }))
    expect(await failure(plugin.call('slow', { ms: 300 }))).toBe('resource_exhausted')
    expect(await first).toBe('passed')
    // Widened while a call waits: the waiting call is let in at once, beside the running one.
    narrow({ max_concurrent_calls: 1, max_queued_calls: 1 })
    const running = plugin.call('slow', { ms: 2000 })
    const waiting = plugin.call('echo', 'let in')
    narrow({ max_concurrent_calls: 2, max_queued_calls: 1 })
    const order: string[] = []
    await Promise.all([running.then(() => order.push('running')), waiting.then(() => order.push('waiting'))])
    expect(order).toEqual(['waiting', 'running'])
  })

  it('memory_mb: a resident set that fit now restarts the plugin', async () => {
    const { plugin, narrow } = await start(
      'sdk-plugin.mjs',
      ['memory-hog', 'hog'],
      {},
      {
        ...roomy,
        memory_mb: 4096,
      },
    )
    const changes: RuntimeStateChange[] = []
    plugin.onStateChange((change) => changes.push(change))
    const restarting = nextState(plugin, 'restarting')
    await plugin.call('grow')
    // Many checks 100 ms apart under the load-time limit: no restart.
    await new Promise((resolve) => setTimeout(resolve, 600))
    expect(changes).toEqual([])
    narrow({ memory_mb: 120 })
    expect((await restarting).reason).toContain('above its memory_mb of 120')
  })
})
