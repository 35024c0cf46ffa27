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
} from './testing/support.js'

// Its own file, so its own process: the peak resident set below is this test's alone.
const host = recordingHost()
const runner = createGrpcRunner({ logger: memoryLogger().logger })
const huge = 64 << 20
const peakMiB = () => process.resourceUsage().maxRSS / 1024

describe('messages larger than the grant allows are refused at the transport', () => {
  let plugin: Plugin

  beforeAll(async () => {
    const manifest = fixtureManifest('big', 'unary-plugin.mjs', ['big'])
    const grant = grantFor(
      manifest,
      {
        // Building the huge messages costs the plugin itself some hundred MiB: not what is watched here.
        memory_mb: 4096,
        init_timeout: 5000,
        call_timeout: 30_000,
        max_host_call_bytes: 64 << 10,
        max_output_bytes: 1 << 20,
      },
      bareFixturePolicy,
    )
    plugin = await runner.load({ manifest, dir: fixturesDir, grant, hostApi: host.handler })
    await plugin.register()
    await plugin.init({})
  })
  afterAll(() => runner.close())

  it('a host call above max_host_call_bytes never reaches the host API, nor the host’s memory', async () => {
    const before = peakMiB()
    const answer = (await plugin.call('big-log', { bytes: huge })) as { transport?: number; details?: string }
    // RESOURCE_EXHAUSTED, from the broker's server before it read the message.
    expect(answer.transport).toBe(8)
    expect(answer.details).toMatch(/larger than max/)
    expect(host.calls.filter((c) => c.method === 'log')).toEqual([])
    expect(peakMiB() - before).toBeLessThan(32)
    // Within the cap, host calls work as before.
    expect(await plugin.call('big-log', { bytes: 1000 })).toEqual({ result: {} })
  })

  it('a result above max_output_bytes is refused before it is read whole', async () => {
    const before = peakMiB()
    const error = await plugin.call('big-result', { bytes: huge }).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(isPluginError(error) && error.code).toBe('resource_exhausted')
    expect(isPluginError(error) && error.message).toMatch(/larger than max/)
    expect(peakMiB() - before).toBeLessThan(32)
    expect(await plugin.call('big-result', { bytes: 1000 })).toBe('x'.repeat(1000))
    expect(await plugin.call('echo', 'still here')).toBe('still here')
  })
})

describe('an SDK plugin’s host call above max_host_call_bytes, on the host call stream', () => {
  const runner = createGrpcRunner({ logger: memoryLogger().logger })
  let plugin: Plugin

  beforeAll(async () => {
    const manifest = fixtureManifest('sdk-big', 'sdk-plugin.mjs', ['well', 'sdk-big'])
    const grant = grantFor(manifest, { max_host_call_bytes: 64 << 10 }, bareFixturePolicy)
    plugin = await runner.load({ manifest, dir: fixturesDir, grant, hostApi: host.handler })
    await plugin.register()
    await plugin.init({})
  })
  afterAll(() => runner.close())

  it('fails that host call before the host reads it whole; the next host call opens a new stream', async () => {
    const before = host.calls.length
    const error = await plugin.call('bigHostCall', { bytes: huge }).catch((e: unknown) => e)
    expect(isPluginError(error) && [error.code, error.message]).toEqual([
      'unavailable',
      expect.stringMatching(/host call log failed: .*larger than max/),
    ])
    expect(host.calls.length).toBe(before)
    expect(await plugin.call('bigHostCall', { bytes: 1000 })).toEqual({})
    expect(host.calls.slice(before).map((c) => c.method)).toEqual(['log'])
  })
})
