import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  type CallRequest,
  type CallResult,
  corralHandshake,
  deadlineIn,
  pluginService,
  type ResultBatch,
  resultBatchBytes,
  unary,
} from '@corral/proto'
import { Metadata } from '@grpc/grpc-js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type GoPluginClient, startGoPlugin } from './go-plugin-client.js'
import { createGrpcRunner, type GrpcPlugin } from './grpc-runner.js'
import {
  eventually,
  fixturesDir,
  grantFor,
  memoryLogger,
  processExists,
  repoRoot,
} from './testing/support.js'

/** Builds the go-calls fixture into `dir`; the binary's path. */
function buildGoCalls(dir: string): string {
  const binary = join(dir, 'go-calls')
  execFileSync('sh', [
    join(repoRoot, 'packages/plugin-sdk/go/build-plugin.sh'),
    join(fixturesDir, 'go-calls'),
    binary,
  ])
  return binary
}

/** The Go SDK's CallStream, spoken to directly: a real Go plugin built from the fixture's source. */
describe('the Go SDK’s call stream', () => {
  const dir = mkdtempSync(join(tmpdir(), 'corral-go-calls-'))
  const logs = memoryLogger()
  let plugin: GoPluginClient

  beforeAll(async () => {
    const binary = buildGoCalls(dir)
    plugin = await startGoPlugin({
      command: binary,
      handshake: corralHandshake,
      autoMtls: true,
      logger: logs.logger,
    })
  }, 180_000)
  afterAll(async () => {
    await plugin?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  /** One CallStream: send batches, read every batch of results it answers with. */
  function openStream() {
    const batches: CallResult[][] = []
    const stream = plugin.rpc.makeBidiStreamRequest(
      pluginService.callStream.path,
      pluginService.callStream.requestSerialize,
      pluginService.callStream.responseDeserialize,
      new Metadata(),
      {},
    )
    stream.on('data', (batch: ResultBatch) => batches.push(batch.results ?? []))
    stream.on('error', () => {})
    const results = () => batches.flat()
    return {
      batches,
      send: (requests: Partial<CallRequest>[]) =>
        stream.write({ requests: requests.map((r) => ({ token: '', timeoutMs: 0, ...r })) }),
      result: async (id: number) => {
        await eventually(() => results().some((r) => r.id === id), 10_000, `the result of call ${id}`)
        return results().find((r) => r.id === id) as CallResult
      },
      ids: () => results().map((r) => r.id),
      end: () => stream.end(),
    }
  }
  const json = (value: unknown) => Buffer.from(JSON.stringify(value))
  const parsed = (bytes: Uint8Array | null | undefined) => JSON.parse(Buffer.from(bytes ?? []).toString())
  const endedLogs = () => logs.entries.filter((e) => e.message === 'ended').map((e) => e.fields?.why)

  it('is offered at Register, so the host makes its calls over it', async () => {
    const response = await unary(plugin.rpc, pluginService.register, { hostVersion: '0.1.0' })
    expect(response.callStream).toBe(true)
  })

  it('runs each call of a batch at once and answers each by its id, a slow one last', async () => {
    const stream = openStream()
    stream.send([
      { id: 1, function: 'sleep', argsJson: json({ ms: 300 }) },
      { id: 2, function: 'echo', argsJson: json({ n: 2 }) },
      { id: 3, function: 'echo', argsJson: json({ n: 3 }) },
    ])
    expect(parsed((await stream.result(1)).resultJson)).toEqual({ ms: 300, bytes: 0, calls: 0 })
    expect(stream.ids().indexOf(1)).toBe(2)
    expect(parsed((await stream.result(2)).resultJson)).toEqual({ n: 2 })
    expect(parsed((await stream.result(3)).resultJson)).toEqual({ n: 3 })
    stream.end()
  })

  it('cancels a call the host cancels, and sends no result for it', async () => {
    const stream = openStream()
    stream.send([{ id: 10, function: 'wait' }])
    await new Promise((resolve) => setTimeout(resolve, 100))
    stream.send([{ id: 10, cancel: true }])
    await eventually(() => endedLogs().includes('context canceled'), 5000, 'the call to see its cancel')
    stream.send([{ id: 11, function: 'echo', argsJson: json('after') }])
    expect(parsed((await stream.result(11)).resultJson)).toBe('after')
    expect(stream.ids()).toEqual([11])
    stream.end()
  })

  it('ends a call at its timeout_ms, with deadline_exceeded', async () => {
    const stream = openStream()
    stream.send([{ id: 20, function: 'wait', timeoutMs: 150 }])
    const result = await stream.result(20)
    expect(parsed(result.errorJson)).toMatchObject({ code: 'deadline_exceeded' })
    expect(endedLogs()).toContain('context deadline exceeded')
    stream.end()
  })

  it('cancels the calls still running when the host ends the stream', async () => {
    const before = endedLogs().length
    const stream = openStream()
    stream.send([{ id: 30, function: 'wait' }])
    await new Promise((resolve) => setTimeout(resolve, 100))
    stream.end()
    await eventually(() => endedLogs().length > before, 5000, 'the call to end with its stream')
    expect(endedLogs().slice(before)).toEqual(['context canceled'])
  })

  it('fails only the call that panics', async () => {
    const stream = openStream()
    stream.send([
      { id: 40, function: 'panic' },
      { id: 41, function: 'echo', argsJson: json(41) },
    ])
    expect(parsed((await stream.result(40)).errorJson)).toMatchObject({ code: 'plugin_error' })
    expect(parsed((await stream.result(41)).resultJson)).toBe(41)
    expect(processExists(plugin.pid as number)).toBe(true)
    stream.end()
  })

  it('keeps a batch of several results within resultBatchBytes, which the host takes', async () => {
    const stream = openStream()
    const ids = [50, 51, 52, 53, 54, 55]
    stream.send(ids.map((id) => ({ id, function: 'big', argsJson: json({ bytes: 100 << 10 }) })))
    for (const id of ids) expect(parsed((await stream.result(id)).resultJson)).toHaveLength(100 << 10)
    for (const batch of stream.batches.filter((b) => b.length > 1)) {
      const bytes = batch.reduce((sum, r) => sum + (r.resultJson?.length ?? 0) + 16, 0)
      expect(bytes).toBeLessThanOrEqual(resultBatchBytes)
    }
    stream.end()
  })

  it('still answers a unary Call, for a host that does not use the stream', async () => {
    const result = await unary(
      plugin.rpc,
      pluginService.call,
      { function: 'echo', argsJson: json('unary'), timeoutMs: 1000, token: '' },
      { deadline: deadlineIn(2000) },
    )
    expect(parsed(result.resultJson)).toBe('unary')
  })
})

describe('the Go SDK’s host calls, on their own stream', () => {
  const dir = mkdtempSync(join(tmpdir(), 'corral-go-calls-'))
  const runner = createGrpcRunner({ hostVersion: '0.1.0', logger: memoryLogger().logger })
  const slow: Array<() => void> = []
  let plugin: GrpcPlugin

  beforeAll(async () => {
    buildGoCalls(dir)
    const manifest = {
      name: 'go-calls',
      version: '0.1.0',
      runtime: 'grpc' as const,
      entry: { binary: 'go-calls', args: [], env: [] },
      resources: { permissions: [] },
      config: {},
    }
    plugin = await runner.load({
      manifest,
      dir,
      grant: grantFor(manifest, { call_timeout: 20_000 }),
      hostApi: (method) =>
        method === 'slow' ? new Promise((resolve) => slow.push(() => resolve({}))) : Promise.resolve({}),
    })
    await plugin.register()
    await plugin.init({})
  }, 180_000)
  afterAll(async () => {
    for (const end of slow.splice(0)) end()
    await runner.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('ends a host call at its ctx while the host reads no more of the stream (the plugin has every host call it may)', async () => {
    // 300 slow host calls of 100 KB each: 256 at most run, and the rest fill the stream's window.
    const answered = plugin.call('crowd', { calls: 300, bytes: 100_000, ms: 200 })
    const result = (await Promise.race([
      answered,
      new Promise((resolve) => setTimeout(() => resolve('still waiting after 5 s'), 5000)),
    ])) as { code: string; ms: number } | string
    for (const end of slow.splice(0)) end()
    expect(result).toMatchObject({ code: 'deadline_exceeded' })
    expect((result as { ms: number }).ms).toBeLessThan(1000)
  })
})
