import { describe, expect, it } from 'vitest'
import {
  createChannelBuffer,
  HostChannelEnd,
  MessageKind,
  ringSlots,
  slotBytes,
  WorkerChannelEnd,
  writeInput,
} from './channel.js'

/**
 * The two ends of one channel in one thread. The worker end blocks only until what it waits for
 * is there, so each step below publishes before the other end reads.
 */
const encoder = new TextEncoder()
const decoder = new TextDecoder()

function channel(): { host: HostChannelEnd; worker: WorkerChannelEnd } {
  const buffer = createChannelBuffer()
  return { host: new HostChannelEnd(buffer), worker: new WorkerChannelEnd(buffer) }
}

const text = (payload: Uint8Array | undefined) => decoder.decode(payload ?? new Uint8Array())

/** The worker runs its next call: answers `output`, or echoes the input. */
function runNext(worker: WorkerChannelEnd, output?: string): { fn: string; input: string; seq: number } {
  const call = worker.nextCall()
  const seen = { fn: call.fn, input: text(call.input), seq: call.seq }
  worker.reply(MessageKind.result, 0, output === undefined ? call.input : encoder.encode(output))
  worker.finish()
  return seen
}

/** The results the host can read now, in order. */
function readResults(host: HostChannelEnd): { seq: number; output: string }[] {
  const results = []
  for (let result = host.peekResult(); result !== undefined; result = host.peekResult()) {
    results.push({ seq: result.seq, output: text(result.payload) })
    host.shiftResult()
  }
  return results
}

describe('channel', () => {
  it('carries queued calls to the worker in order, and all their results back in one read', async () => {
    const { host, worker } = channel()
    expect(host.queue('greet', '{"name":"Ada"}', 1)).toBeGreaterThanOrEqual(0)
    expect(host.queue('greet', '{"name":"Bo"}', 2)).toBeGreaterThanOrEqual(0)
    expect(host.queue('bytes', new Uint8Array([104, 105]), 3)).toBeGreaterThanOrEqual(0)
    expect(runNext(worker)).toEqual({ fn: 'greet', input: '{"name":"Ada"}', seq: 1 })
    expect(runNext(worker)).toEqual({ fn: 'greet', input: '{"name":"Bo"}', seq: 2 })
    expect(runNext(worker)).toEqual({ fn: 'bytes', input: 'hi', seq: 3 })
    expect(await host.waitForWorker()).toBe(true)
    expect(readResults(host)).toEqual([
      { seq: 1, output: '{"name":"Ada"}' },
      { seq: 2, output: '{"name":"Bo"}' },
      { seq: 3, output: 'hi' },
    ])
    expect(host.peekResult()).toBeUndefined()
  })

  it('holds at most ringSlots calls: a slot is free again once the worker is done with its call', () => {
    const { host, worker } = channel()
    for (let seq = 1; seq <= ringSlots; seq++) expect(host.queue('f', '1', seq)).toBeGreaterThanOrEqual(0)
    expect(host.room).toBe(0)
    expect(host.queue('f', '1', ringSlots + 1)).toBe(-1)
    runNext(worker)
    expect(host.room).toBe(1)
    expect(host.queue('f', '1', ringSlots + 1)).toBeGreaterThanOrEqual(0)
  })

  it('refuses into a slot a call larger than a slot', () => {
    const { host } = channel()
    expect(host.queue('f', 'x'.repeat(slotBytes), 1)).toBe(-1)
    expect(host.room).toBe(ringSlots)
  })

  it('lets the host take back a queued call the worker has not taken; the worker skips it', async () => {
    const { host, worker } = channel()
    const first = host.queue('f', '1', 1)
    const second = host.queue('f', '2', 2)
    host.queue('f', '3', 3)
    expect(host.revoke(second, 3)).toBe(false) // another call's number: not this slot's call
    expect(host.revoke(second, 2)).toBe(true)
    expect(runNext(worker).seq).toBe(1)
    expect(host.revoke(first, 1)).toBe(false) // taken: too late
    expect(runNext(worker).seq).toBe(3)
    await host.waitForWorker()
    expect(readResults(host).map((r) => r.seq)).toEqual([1, 3])
    expect(host.room).toBe(ringSlots) // the skipped slot is free too
  })

  it('serves a host call through the exchange area, after the results of earlier calls', async () => {
    const { host, worker } = channel()
    host.queue('quick', '1', 1)
    host.queue('work', '{}', 2)
    runNext(worker)
    worker.nextCall()
    const request = encoder.encode('cache.get{"key":"k"}')
    worker.send(MessageKind.hostCall, 'cache.get'.length, 0, request)
    await host.waitForWorker()
    expect(readResults(host)).toEqual([{ seq: 1, output: '1' }])
    expect(host.hasMessage).toBe(true)
    // A host call sits whole in the exchange area: read in the same turn.
    const hostCall = host.peekWhole()
    expect([hostCall?.kind, hostCall?.seq, hostCall?.aux, text(hostCall?.payload)]).toEqual([
      MessageKind.hostCall,
      2,
      9,
      'cache.get{"key":"k"}',
    ])
    expect(host.postText(MessageKind.hostResult, '{"ok":1}')).toBe(true)
    const response = worker.receive()
    expect([response.kind, text(response.payload)]).toEqual([MessageKind.hostResult, '{"ok":1}'])
    expect(host.hasMessage).toBe(false) // the worker freed the area as it read the response
    worker.reply(MessageKind.result, 0, encoder.encode('done'))
    worker.finish()
    expect(readResults(host)).toEqual([{ seq: 2, output: 'done' }])
  })

  it('carries a call and a result too large for a slot through the exchange area', async () => {
    const { host, worker } = channel()
    const input = 'y'.repeat(slotBytes + 10)
    const bytes = encoder.encode(`big${input}`)
    await host.sendLarge(3, bytes, 7)
    const call = worker.nextCall()
    expect([call.fn, text(call.input), call.seq]).toEqual(['big', input, 7])
    worker.reply(MessageKind.result, 0, call.input)
    worker.finish()
    await host.waitForWorker()
    expect(host.peekResult()).toBeUndefined()
    const result = await host.receive()
    expect([result?.kind, result?.seq, text(result?.payload)]).toEqual([MessageKind.result, 7, input])
    host.markRead()
    expect(host.hasMessage).toBe(false)
  })

  it('wakes a sleeping worker at once for a call with none ahead, and once at the end of the turn for calls queued behind others', async () => {
    const buffer = createChannelBuffer()
    const host = new HostChannelEnd(buffer)
    const worker = new WorkerChannelEnd(buffer)
    // The worker's sleep flag (control word 9), set as the worker sets it before it sleeps for a
    // call (1); the host clears it when it wakes the worker.
    const control = new Int32Array(buffer, 0, 16)
    const sleepsForCall = () => Atomics.store(control, 9, 1)
    sleepsForCall()
    host.queue('f', '1', 1)
    expect(Atomics.load(control, 9)).toBe(0)
    sleepsForCall()
    host.queue('f', '2', 2, true)
    host.queue('f', '3', 3, true)
    expect(Atomics.load(control, 9)).toBe(1)
    await new Promise((resolve) => setImmediate(resolve))
    expect(Atomics.load(control, 9)).toBe(0)
    expect([runNext(worker).seq, runNext(worker).seq, runNext(worker).seq]).toEqual([1, 2, 3])
  })

  it('refuses text larger than the exchange area in place: the caller sends it in chunks instead', () => {
    const { host } = channel()
    expect(host.postText(MessageKind.hostResult, 'x'.repeat(host.area.length + 1))).toBe(false)
    expect(writeInput(new Uint8Array(host.area.length + 1), host.area)).toBeUndefined()
  })

  it('stopping: a host waiting on a worker that never answers is woken with nothing', async () => {
    const { host, worker } = channel()
    host.queue('spin', '', 1)
    worker.nextCall()
    const waiting = host.waitForWorker()
    host.wake()
    expect(await waiting).toBe(false)
  })

  it('stopping: a large final message already in the exchange area is kept (peekFinal), once', () => {
    const { host, worker } = channel()
    host.queue('quick', '', 1)
    expect(host.peekFinal()).toBeUndefined()
    worker.nextCall()
    const failure = `{"code":"plugin_trap","message":"${'z'.repeat(slotBytes)}"}`
    worker.reply(MessageKind.failure, 1, encoder.encode(failure))
    const final = host.peekFinal()
    expect([final?.kind, final?.flags, final?.seq, text(final?.payload)]).toEqual([
      MessageKind.failure,
      1,
      1,
      failure,
    ])
    host.markRead()
    expect(host.peekFinal()).toBeUndefined()
  })
})
