// A hostile plugin that asks for large answers and reads none of them, not even at the HTTP/2 level
// (raw HTTP/2: no flow-control credit given back): on call streams, or as unary host calls on several
// connections. Its own file, so its own process: the resident set measured is this test's alone.
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

describe.each([
  {
    // Measured on fbd712c: 1943 answers held, +207–217 MiB, as long as the plugin kept its streams open.
    what: '8 call streams of 256 host calls',
    fixture: 'host-stream-unread.mjs',
    args: [8, maxHostCallsInFlight],
  },
  {
    // Measured on 79f6a2a: 2048 answers held, +313 MiB; each connection more brought 256 more.
    what: `unary host calls, ${maxStreamsPerConnection} on each of 8 connections`,
    fixture: 'host-unary-unread.mjs',
    args: [8, maxStreamsPerConnection],
  },
])('a plugin that asks for large answers and reads none at the HTTP/2 level: $what', ({ fixture, args }) => {
  const dir = mkdtempSync(join(tmpdir(), 'corral-unread-'))
  const pluginClient = new Client('unix:/nonexistent', credentials.createInsecure())
  const broker = new GrpcBroker(pluginClient, { listen: { network: 'unix', socketDir: dir }, name: 'unread' })
  let plugin: ChildProcess | undefined
  afterAll(() => {
    plugin?.kill('SIGKILL')
    broker.close()
    pluginClient.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it(`has at most ${maxHostCallsInFlight} answers of a plugin wait unsent in the host`, async () => {
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
    const before = rssMiB()
    plugin = spawn(
      process.execPath,
      [join(fixturesDir, fixture), offered.address, token, ...args.map(String)],
      { stdio: 'ignore' },
    )
    // Until the host stops answering (a slot is freed only once its answer has left).
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
    const grown = rssMiB() - before
    console.log(`host RSS grew ${grown.toFixed(0)} MiB for ${served} unread answers of 100 KB`)
    expect(served).toBeLessThanOrEqual(maxHostCallsInFlight)
    expect(grown).toBeLessThan(64)
  })
})
