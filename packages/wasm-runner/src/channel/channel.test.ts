import { describe, expect, it } from 'vitest'
import { createChannelBuffer, HostChannelEnd, MessageKind, WorkerChannelEnd, writeInput } from './channel.js'

/**
 * The two ends of one channel in one thread. The worker end blocks only while the host holds the
 * turn, so each step below hands the turn over before the other end reads.
 */
const encoder = new TextEncoder()
const decoder = new TextDecoder()

function channel(): { host: HostChannelEnd; worker: WorkerChannelEnd } {
  const buffer = createChannelBuffer()
  return { host: new HostChannelEnd(buffer), worker: new WorkerChannelEnd(buffer) }
}

/** The host sends call `seq` of `fn` with `input`, written in place as WorkerHandle does. */
function sendCall(host: HostChannelEnd, fn: string, input: string, seq: number): void {
  host.setCallSeq(seq)
  const name = encoder.encodeInto(fn, host.area)
  const written = writeInput(input, host.area.subarray(name.written)) as number
  host.postInPlace(MessageKind.call, name.written, name.written + written)
}

const text = (payload: Uint8Array) => decoder.decode(payload)

describe('channel', () => {
  it('carries a call to the worker and its result back', async () => {
    const { host, worker } = channel()
    sendCall(host, 'greet', '{"name":"Ada"}', 1)
    expect(host.workerHasTurn).toBe(true)
    const call = worker.callFrom(worker.receive())
    expect([call.fn, text(call.input), call.seq]).toEqual(['greet', '{"name":"Ada"}', 1])
    worker.send(MessageKind.result, 0, 0, encoder.encode('"hi Ada"'))
    const answer = await host.receive()
    expect([answer?.kind, text(answer?.payload ?? new Uint8Array())]).toEqual([
      MessageKind.result,
      '"hi Ada"',
    ])
  })

  it('serves a host call inside a call: request, then the response, on the same turn', async () => {
    const { host, worker } = channel()
    sendCall(host, 'work', '{}', 1)
    worker.receive()
    const method = encoder.encode('cache.get')
    const args = encoder.encode('{"key":"k"}')
    const request = new Uint8Array(method.length + args.length)
    request.set(method)
    request.set(args, method.length)
    worker.send(MessageKind.hostCall, method.length, 0, request)
    const hostCall = (await host.receive()) as { kind: number; aux: number; payload: Uint8Array }
    expect(hostCall.kind).toBe(MessageKind.hostCall)
    expect(text(hostCall.payload.subarray(0, hostCall.aux))).toBe('cache.get')
    expect(text(hostCall.payload.subarray(hostCall.aux))).toBe('{"key":"k"}')
    expect(host.postText(MessageKind.hostResult, '{"ok":1}')).toBe(true)
    const response = worker.receive()
    expect([response.kind, text(response.payload)]).toEqual([MessageKind.hostResult, '{"ok":1}'])
  })

  it('refuses text larger than the data area in place: the caller sends it in chunks instead', () => {
    const { host } = channel()
    expect(host.postText(MessageKind.hostResult, 'x'.repeat(host.area.length + 1))).toBe(false)
    expect(host.workerHasTurn).toBe(false)
    expect(writeInput(new Uint8Array(host.area.length + 1), host.area)).toBeUndefined()
  })

  it('pipelines: a queued call runs right after the one it follows, once the host has acked the result', async () => {
    const { host, worker } = channel()
    sendCall(host, 'first', '1', 1)
    const first = worker.callFrom(worker.receive())
    expect(host.queue('second', '2', 2, 1)).toBe(true)
    expect(host.queue('third', '3', 3, 2)).toBe(false) // one mailbox
    worker.send(MessageKind.result, 0, 0, encoder.encode('1'))
    // The worker claims the queued call straight after its result, without waiting for the host.
    const second = worker.takeQueued(first.seq, false)
    expect([second?.fn, text(second?.input ?? new Uint8Array()), second?.seq]).toEqual(['second', '2', 2])
    expect(host.unqueue()).toBe(false) // claimed: too late to take it back
    expect(text((await host.receive())?.payload ?? new Uint8Array())).toBe('1')
    host.markRead()
    host.ack()
    worker.send(MessageKind.result, 0, 0, encoder.encode('2'))
    expect(text((await host.receive())?.payload ?? new Uint8Array())).toBe('2')
  })

  it('never runs a queued call out of order: only right after the call it follows', () => {
    const { host, worker } = channel()
    sendCall(host, 'first', '1', 1)
    worker.receive()
    expect(host.queue('later', '9', 9, 5)).toBe(true)
    expect(worker.takeQueued(1, false)).toBeUndefined()
  })

  it('lets the host take back a queued call the worker has not claimed', () => {
    const { host, worker } = channel()
    sendCall(host, 'first', '1', 1)
    worker.receive()
    expect(host.queue('second', '2', 2, 1)).toBe(true)
    expect(host.unqueue()).toBe(true)
    expect(worker.takeQueued(1, false)).toBeUndefined()
    expect(host.queue('second', '2', 2, 1)).toBe(true) // the mailbox is free again
  })

  it('stopping: a host waiting on a worker that never answers is woken with nothing', async () => {
    const { host, worker } = channel()
    sendCall(host, 'spin', '', 1)
    worker.receive()
    const waiting = host.receive()
    host.wake()
    expect(await waiting).toBeUndefined()
  })

  it('stopping: a result already in the channel is kept (peekFinal), once', () => {
    const { host, worker } = channel()
    sendCall(host, 'quick', '', 1)
    expect(host.peekFinal()).toBeUndefined() // the worker holds the turn
    worker.receive()
    worker.send(MessageKind.failure, 0, 1, encoder.encode('{"code":"plugin_trap"}'))
    const final = host.peekFinal()
    expect([final?.kind, final?.flags, text(final?.payload ?? new Uint8Array())]).toEqual([
      MessageKind.failure,
      1,
      '{"code":"plugin_trap"}',
    ])
    host.markRead()
    expect(host.peekFinal()).toBeUndefined()
  })
})
