import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type HostCallRequest, type HostCallResponse, hostService, unary } from '@corral/proto'
import type { HostCallHandler } from '@corral/types'
import { Client, credentials, Metadata, Server, ServerCredentials, status } from '@grpc/grpc-js'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  maxCallStreams,
  maxHostCallBytesInFlight,
  maxHostCallsInFlight,
  serveHostService,
} from './host-service.js'
import { callInFlight, eventually } from './testing/support.js'

/** HostService's CallStream over a real grpc-js server and client on a unix socket. */
describe('serveHostService’s CallStream', () => {
  let dir: string
  let server: Server
  let client: Client
  const { calls, token } = callInFlight()
  let handler: HostCallHandler

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'corral-host-service-'))
    server = new Server()
    serveHostService(server, 'p', calls, (method, args, context) => handler(method, args, context))
    const socket = `unix:${join(dir, 'host.sock')}`
    await new Promise((resolve, reject) =>
      server.bindAsync(socket, ServerCredentials.createInsecure(), (error, port) =>
        error ? reject(error) : resolve(port),
      ),
    )
    client = new Client(socket, credentials.createInsecure())
  })
  afterEach(() => {
    client.close()
    server.forceShutdown()
    rmSync(dir, { recursive: true, force: true })
  })

  function openStream() {
    const responses: HostCallResponse[] = []
    const stream = client.makeBidiStreamRequest(
      hostService.callStream.path,
      hostService.callStream.requestSerialize,
      hostService.callStream.responseDeserialize,
      new Metadata(),
    )
    stream.on('data', (response: HostCallResponse) => responses.push(response))
    stream.on('error', () => {}) // a stream still open when the server shuts down
    const send = (request: HostCallRequest) => stream.write(request)
    return { stream, responses, send }
  }
  /** A promise and what settles it (Node 20 has no Promise.withResolvers). */
  function later() {
    let resolve = () => {}
    const promise = new Promise<void>((settle) => {
      resolve = settle
    })
    return { promise, resolve }
  }
  const json = (value: unknown) => Buffer.from(JSON.stringify(value))
  const decoded = (bytes: Uint8Array | null | undefined) => JSON.parse(Buffer.from(bytes ?? []).toString())

  it('answers each host call with its id, in the order they finish', async () => {
    const slow = later()
    handler = async (method, args) => {
      if (method === 'slow') await slow.promise
      return { method, args }
    }
    const { stream, responses, send } = openStream()
    send({ id: 7, method: 'slow', argsJson: json(1), token })
    send({ id: 8, method: 'fast', argsJson: json(2), token })
    await eventually(() => responses.length === 1, 5000, 'the fast answer')
    slow.resolve()
    await eventually(() => responses.length === 2, 5000, 'the slow answer')
    expect(responses.map((r) => [r.id, decoded(r.resultJson)])).toEqual([
      [8, { method: 'fast', args: 2 }],
      [7, { method: 'slow', args: 1 }],
    ])
    stream.end()
  })

  it('refuses on the stream what it refuses on a unary Call: no token, an unknown one, too many bytes', async () => {
    handler = async () => ({ served: true })
    const { stream, responses, send } = openStream()
    send({ id: 1, method: 'cache.get', argsJson: json({}), token: '' })
    send({ id: 2, method: 'cache.get', argsJson: json({}), token: 'not-a-call' })
    send({ id: 3, method: 'cache.get', argsJson: json('x'.repeat(2000)), token })
    await eventually(() => responses.length === 3, 5000, 'three answers')
    const codes = Object.fromEntries(responses.map((r) => [r.id, decoded(r.errorJson).code]))
    expect(codes).toEqual({ 1: 'permission_denied', 2: 'invalid_argument', 3: 'resource_exhausted' })
    stream.end()
  })

  it(`runs at most ${maxHostCallsInFlight} host calls of a stream at once, and reads on as they finish`, async () => {
    const waiting: Array<() => void> = []
    let started = 0
    let finished = 0
    let mostAtOnce = 0
    handler = () => {
      started += 1
      mostAtOnce = Math.max(mostAtOnce, started - finished)
      return new Promise((resolve) =>
        waiting.push(() => {
          finished += 1
          resolve({})
        }),
      )
    }
    const { stream, responses, send } = openStream()
    const sent = maxHostCallsInFlight * 4
    for (let id = 0; id < sent; id++) send({ id, method: 'cache.get', argsJson: json({}), token })
    await eventually(() => started === maxHostCallsInFlight, 5000, 'the first host calls to start')
    // The host reads no further while those run.
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(started).toBe(maxHostCallsInFlight)
    while (responses.length < sent) {
      for (const resume of waiting.splice(0)) resume()
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    expect(mostAtOnce).toBe(maxHostCallsInFlight)
    expect(new Set(responses.map((r) => r.id)).size).toBe(sent)
    stream.end()
  })

  it(`holds at most ${maxHostCallBytesInFlight >> 20} MiB of a plugin's host call arguments at once`, async () => {
    const bigToken = callInFlight({ calls, maxHostCallBytes: 2 << 20 }).token
    const waiting: Array<() => void> = []
    handler = () => new Promise((resolve) => waiting.push(() => resolve({})))
    const { stream, responses, send } = openStream()
    const argsJson = json('x'.repeat(1 << 20))
    const sent = 48
    for (let id = 0; id < sent; id++) send({ id, method: 'log', argsJson, token: bigToken })
    const fit = Math.floor(maxHostCallBytesInFlight / argsJson.length)
    await eventually(() => waiting.length >= fit, 10_000, 'as many host calls as fit')
    await new Promise((resolve) => setTimeout(resolve, 500))
    expect(waiting.length).toBe(fit)
    while (responses.length < sent) {
      for (const resume of waiting.splice(0)) resume()
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    stream.end()
  })

  it(`serves ${maxCallStreams} call streams of a plugin at once, and another once one has ended, however it ended`, async () => {
    handler = async () => ({ ok: true })
    const answered = async (opened: ReturnType<typeof openStream>, id: number) => {
      opened.send({ id, method: 'cache.get', argsJson: json({}), token })
      await eventually(() => opened.responses.length > 0, 5000, `an answer on stream ${id}`)
      return opened.responses[0]?.id
    }
    for (let round = 0; round < 3; round++) {
      const open = Array.from({ length: maxCallStreams }, () => openStream())
      expect(await Promise.all(open.map((opened, i) => answered(opened, i)))).toEqual(open.map((_, i) => i))
      const extra = openStream()
      const refused = await new Promise<number | undefined>((resolve) =>
        extra.stream.on('status', (s) => resolve(s.code)),
      )
      expect(refused).toBe(status.RESOURCE_EXHAUSTED)
      // One ends as a plugin ends it, the others as a plugin that goes away does.
      const [first, ...rest] = open
      first?.stream.end()
      for (const opened of rest) opened.stream.cancel()
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  })

  it('answers every call the plugin made before it ended the stream, then ends it', async () => {
    const answers = later()
    handler = async () => {
      await answers.promise
      return { done: true }
    }
    const { stream, responses, send } = openStream()
    const ended = new Promise<void>((resolve) => stream.on('end', resolve))
    send({ id: 1, method: 'cache.get', argsJson: json({}), token })
    send({ id: 2, method: 'cache.get', argsJson: json({}), token })
    stream.end()
    await new Promise((resolve) => setTimeout(resolve, 100))
    answers.resolve()
    await ended
    expect(responses.map((r) => r.id).sort()).toEqual([1, 2])
  })

  it(`frees a unary host call's slot once its answer has left: ${maxHostCallsInFlight * 2} in turn are all answered`, async () => {
    handler = async () => ({ ok: true })
    const at = Array.from({ length: 8 }, () => 0)
    await Promise.all(
      at.map(async () => {
        for (let i = 0; i < maxHostCallsInFlight / 4; i++) {
          const response = await unary(client, hostService.call, { method: 'm', argsJson: json({}), token })
          expect(decoded(response.resultJson)).toEqual({ ok: true })
        }
      }),
    )
  })
})
