// A hostile plugin that makes unary host calls with large answers on several connections and reads
// none of them at the HTTP/2 level: the unary twin of host-call-stream-unread. A unary call's slot is
// released once its answer is handed to grpc-js, not once it has left, so unsent unary answers are
// not counted. Its own file, so its own process: the resident set measured is this test's alone.
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client, credentials } from '@grpc/grpc-js'
import { afterAll, describe, expect, it } from 'vitest'
import { GrpcBroker, maxStreamsPerConnection } from './grpc-broker.js'
import { maxHostCallsInFlight, serveHostService } from './host-service.js'
import { callInFlight, eventually, fixturesDir } from './testing/support.js'

const rssMiB = () => process.memoryUsage().rss / (1 << 20)

describe('a plugin that makes unary host calls on several connections, asks for large answers and reads none at the HTTP/2 level', () => {
  const dir = mkdtempSync(join(tmpdir(), 'corral-unary-unread-'))
  const pluginClient = new Client('unix:/nonexistent', credentials.createInsecure())
  const broker = new GrpcBroker(pluginClient, { listen: { network: 'unix', socketDir: dir }, name: 'unread' })
  let plugin: ChildProcess | undefined
  afterAll(() => {
    plugin?.kill('SIGKILL')
    broker.close()
    pluginClient.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it(`keeps at most ${maxHostCallsInFlight} unsent unary answers of a plugin in the host, however many connections bring them (as on the stream)`, async () => {
    const { calls, token } = callInFlight()
    // A 100 KB answer (cache.get of a value the plugin set: the host allows values of 1 MB).
    const answer = 'x'.repeat(100_000)
    let served = 0
    const offered = await broker.serve(
      broker.nextId(),
      (server) =>
        serveHostService(server, 'unread', calls, async () => {
          served += 1
          return answer
        }),
      1024 + (16 << 10),
    )
    const connections = 8
    const before = rssMiB()
    plugin = spawn(
      process.execPath,
      [
        join(fixturesDir, 'host-unary-unread.mjs'),
        offered.address,
        token,
        String(connections),
        String(maxStreamsPerConnection),
      ],
      { stdio: 'ignore' },
    )
    // Until the host stops answering.
    let last = -1
    await eventually(
      () => {
        const settled = served > 0 && served === last
        last = served
        return settled
      },
      20_000,
      'the host to stop answering',
    )
    await new Promise((resolve) => setTimeout(resolve, 500))
    if (global.gc) global.gc()
    const grown = rssMiB() - before
    console.log(`host RSS grew ${grown.toFixed(0)} MiB for ${served} unread unary answers of 100 KB`)
    // Measured on 79f6a2a: 2048 answers (8 connections of 256 calls) held unsent, RSS +313 MiB; each
    // connection more brings 256 more. On the stream they keep their slots until they have left.
    expect(served).toBeLessThanOrEqual(maxHostCallsInFlight)
    expect(grown).toBeLessThan(160)
  })
})
