import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { hostService, unary } from '@corral/proto'
import { Client, credentials, Server, ServerCredentials } from '@grpc/grpc-js'
import { afterAll, describe, expect, it } from 'vitest'
import { GrpcBroker, maxStreamsPerConnection } from './grpc-broker.js'
import { serveHostService } from './host-service.js'
import { callInFlight, eventually, fixturesDir } from './testing/support.js'

// Its own file, so its own process: the resident set below is this test's alone.
const rssMiB = () => process.memoryUsage().rss / (1 << 20)

describe('a plugin that floods HostService/CallStream and reads none of the answers', () => {
  const dir = mkdtempSync(join(tmpdir(), 'corral-host-flood-'))
  const server = new Server()
  let plugin: ChildProcess | undefined
  afterAll(() => {
    plugin?.kill('SIGKILL')
    server.forceShutdown()
    rmSync(dir, { recursive: true, force: true })
  })

  it('gets every answer into its own memory, not the host’s', async () => {
    const { calls, token } = callInFlight()
    let served = 0
    // 20 000 answers of 10 KB: some 200 MB that must not wait in the host.
    const count = 20_000
    const answer = { value: 'x'.repeat(10_000) }
    serveHostService(server, 'flood', calls, async () => {
      served += 1
      return answer
    })
    const target = `unix:${join(dir, 'host.sock')}`
    await new Promise((resolve, reject) =>
      server.bindAsync(target, ServerCredentials.createInsecure(), (error, port) =>
        error ? reject(error) : resolve(port),
      ),
    )
    const before = rssMiB()
    let most = before
    const watch = setInterval(() => {
      most = Math.max(most, rssMiB())
    }, 20)
    plugin = spawn(
      process.execPath,
      [join(fixturesDir, 'host-stream-flood.mjs'), target, token, String(count)],
      {
        stdio: 'ignore',
      },
    )
    try {
      await eventually(() => served === count, 30_000, 'the host to answer every call')
      // The answers left the host: the last of them wait only in the stream's buffers.
      await new Promise((resolve) => setTimeout(resolve, 300))
    } finally {
      clearInterval(watch)
    }
    // Kept in the host, they take some 200 MB more (the code before the stream's drain was heeded).
    expect(most - before).toBeLessThan(100)
  })
})

describe('a plugin that opens unary host calls without end', () => {
  const dir = mkdtempSync(join(tmpdir(), 'corral-host-flood-'))
  // The broker stream to the plugin is never opened: nothing here dials it.
  const pluginClient = new Client('unix:/nonexistent', credentials.createInsecure())
  const broker = new GrpcBroker(pluginClient, { listen: { network: 'unix', socketDir: dir }, name: 'flood' })
  afterAll(() => {
    broker.close()
    pluginClient.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it(`has at most ${maxStreamsPerConnection} of a connection open at once on the broker; the rest wait`, async () => {
    const { calls, token } = callInFlight()
    const waiting: Array<() => void> = []
    const offered = await broker.serve(broker.nextId(), (server) =>
      serveHostService(
        server,
        'flood',
        calls,
        () => new Promise((resolve) => waiting.push(() => resolve({}))),
      ),
    )
    const client = new Client(`unix:${offered.address}`, credentials.createInsecure())
    const hostCall = () =>
      unary(client, hostService.call, { method: 'cache.get', argsJson: Buffer.from('{}'), token })
    try {
      // One call first: the limit holds once the connection's settings are agreed.
      const first = hostCall()
      await eventually(() => waiting.length === 1, 10_000, 'the first call')
      waiting.pop()?.()
      await first
      const sent = maxStreamsPerConnection + 100
      let settled = false
      const answered = Promise.all(Array.from({ length: sent }, hostCall)).finally(() => {
        settled = true
      })
      await eventually(() => waiting.length === maxStreamsPerConnection, 10_000, 'the first calls to start')
      await new Promise((resolve) => setTimeout(resolve, 300))
      expect(waiting.length).toBe(maxStreamsPerConnection)
      // The others start as these end.
      while (!settled) {
        for (const resume of waiting.splice(0)) resume()
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      expect(await answered).toHaveLength(sent)
    } finally {
      client.close()
    }
  })
})
