// Attacks of a hostile plugin on HostService/CallStream, as served by the broker (its real server
// options: max_concurrent_streams, receive limit). Each test that FAILS shows a hole; its title says
// what the host must do instead.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type HostCallRequest, hostService, unary } from '@corral/proto'
import { Client, type ClientDuplexStream, credentials, Metadata, status } from '@grpc/grpc-js'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { GrpcBroker, maxConnectionsPerServer } from './grpc-broker.js'
import { maxHostCallsInFlight, serveHostService } from './host-service.js'
import { callInFlight, eventually } from './testing/support.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('a hostile plugin holding host calls open on its broker socket', () => {
  let dir: string
  let pluginClient: Client
  let broker: GrpcBroker
  let address: string
  let token: string
  /** This test's host calls the host API is running now (they end when the test lets them). */
  let running: Array<() => void> = []
  const clients: Client[] = []

  beforeEach(async () => {
    const mine: Array<() => void> = []
    running = mine
    dir = mkdtempSync(join(tmpdir(), 'corral-stream-attack-'))
    pluginClient = new Client('unix:/nonexistent', credentials.createInsecure())
    broker = new GrpcBroker(pluginClient, { listen: { network: 'unix', socketDir: dir }, name: 'attacker' })
    const inFlight = callInFlight()
    token = inFlight.token
    // A slow host method (plugin.call of a slow plugin, http.request of a slow server, a slow query):
    // each runs until the test ends it, as a real one runs until the call's deadline.
    const offered = await broker.serve(
      broker.nextId(),
      (server) =>
        serveHostService(
          server,
          'attacker',
          inFlight.calls,
          () => new Promise((resolve) => mine.push(() => resolve({}))),
        ),
      1024 + (16 << 10),
    )
    address = `unix:${offered.address}`
  })
  afterEach(() => {
    for (const end of running.splice(0)) end()
    for (const client of clients.splice(0)) client.close()
    broker.close()
    pluginClient.close()
    rmSync(dir, { recursive: true, force: true })
  })

  /** A connection of its own (grpc-js would otherwise share one between clients of the same target). */
  function connect(): Client {
    const client = new Client(address, credentials.createInsecure(), {
      'grpc.use_local_subchannel_pool': 1,
    })
    clients.push(client)
    return client
  }

  function openStream(client: Client): ClientDuplexStream<HostCallRequest, unknown> {
    const stream = client.makeBidiStreamRequest(
      hostService.callStream.path,
      hostService.callStream.requestSerialize,
      hostService.callStream.responseDeserialize,
      new Metadata(),
    )
    stream.on('data', () => {})
    stream.on('error', () => {})
    return stream
  }

  const request = (id: number): HostCallRequest => ({
    id,
    method: 'cache.get',
    argsJson: Buffer.from('{"key":"k"}'),
    token,
  })

  it(`runs at most ${maxHostCallsInFlight} host calls of a plugin at once, however many streams it opens on one connection`, async () => {
    const client = connect()
    const streams = 4
    for (let s = 0; s < streams; s++) {
      const stream = openStream(client)
      for (let id = 0; id < maxHostCallsInFlight; id++) stream.write(request(id))
    }
    // Measured on fbd712c: 1024 host calls running at once (256 per stream, nothing per plugin).
    await eventually(() => running.length >= maxHostCallsInFlight, 10_000, 'the first host calls')
    await sleep(500)
    expect(running.length).toBeLessThanOrEqual(maxHostCallsInFlight)
  })

  it(`has at most ${maxConnectionsPerServer} connections of a plugin to its broker socket, and refuses unary host calls at once while its slots are full`, async () => {
    const stream = openStream(connect())
    for (let id = 0; id < maxHostCallsInFlight; id++) stream.write(request(id))
    await eventually(() => running.length === maxHostCallsInFlight, 10_000, 'the stream’s host calls')
    // Measured on fbd712c: 768 unary host calls held on 3 more connections (connections were free).
    const outcomes = await Promise.all(
      Array.from({ length: maxConnectionsPerServer + 1 }, () =>
        unary(connect(), hostService.call, { method: 'cache.get', argsJson: Buffer.from('{}'), token }).then(
          (response) => JSON.parse(Buffer.from(response.errorJson ?? []).toString()).code as string,
          (error: { code?: number }) => `transport ${error.code}`,
        ),
      ),
    )
    expect(outcomes.sort()).toEqual([
      ...Array(maxConnectionsPerServer - 1).fill('resource_exhausted'),
      ...Array(2).fill(`transport ${status.UNAVAILABLE}`),
    ])
    expect(running.length).toBe(maxHostCallsInFlight)
  })

  it(`keeps counting a cancelled stream's host calls until they end: at most ${maxHostCallsInFlight} run for a plugin that cancels and reopens`, async () => {
    const client = connect()
    for (let round = 0; round < 4; round++) {
      const stream = openStream(client)
      for (let id = 0; id < maxHostCallsInFlight; id++) stream.write(request(id))
      await eventually(
        () => running.length >= (round + 1) * maxHostCallsInFlight,
        2_000,
        `round ${round}'s host calls`,
      ).catch(() => undefined)
      // Gone from the stream's count; the host API still runs them all, to the call's deadline.
      stream.cancel()
      await sleep(50)
    }
    await sleep(300)
    // Measured on fbd712c: 1024 running, one stream open at a time.
    expect(running.length).toBeLessThanOrEqual(maxHostCallsInFlight)
    // The host calls that waited on the cancelled streams never start.
    for (const end of running.splice(0)) end()
    await sleep(300)
    expect(running.length).toBe(0)
  })
})
