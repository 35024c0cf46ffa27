import { EventEmitter } from 'node:events'
import type { CallBatch, CallResult, ResultBatch } from '@corral/proto'
import { isPluginError } from '@corral/types'
import { status } from '@grpc/grpc-js'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { type CallBatchStream, CallStream } from './call-stream.js'

/** A `CallStream` duplex in memory: what the host writes is kept, the test plays the plugin. */
class FakeStream extends EventEmitter implements CallBatchStream {
  readonly written: CallBatch[] = []
  canceled = false
  write(batch: CallBatch): boolean {
    this.written.push(batch)
    return true
  }
  cancel(): void {
    this.canceled = true
  }
  /** The plugin answers: one batch of results. */
  answer(results: ResultBatch['results']): void {
    this.emit('data', { results })
  }
}

const text = (value: unknown) => Buffer.from(JSON.stringify(value))
const decode = (result: CallResult) => JSON.parse(Buffer.from(result.resultJson ?? []).toString())
const request = (fn: string, timeoutMs = 0) => ({
  function: fn,
  argsJson: text(fn),
  timeoutMs,
  token: `t-${fn}`,
})
/** Lets the microtask that sends a batch run. */
const flush = () => new Promise<void>((resolve) => queueMicrotask(resolve))
/** How a call ended: its value, or its error and the error's code. */
interface Outcome {
  value?: unknown
  code?: string
  error?: unknown
}
const outcome = (call: Promise<unknown>): Promise<Outcome> =>
  call.then(
    (value) => ({ value }),
    (error: unknown) => ({ code: isPluginError(error) ? error.code : 'not a PluginError', error }),
  )

describe('CallStream', () => {
  let fake: FakeStream
  let stream: CallStream

  beforeEach(() => {
    fake = new FakeStream()
    stream = new CallStream(fake, 'stats', 1000)
  })

  it('sends calls started in one turn as one batch, and pairs results by id in any order', async () => {
    const first = stream.call(request('a'), undefined, decode)
    const second = stream.call(request('b'), undefined, decode)
    await flush()
    expect(fake.written).toHaveLength(1)
    const sent = fake.written[0]?.requests ?? []
    expect(sent.map((r) => r.function)).toEqual(['a', 'b'])
    expect(sent.map((r) => r.token)).toEqual(['t-a', 't-b'])
    const [idA, idB] = sent.map((r) => r.id)
    fake.answer([
      { id: idB, resultJson: text('result b') },
      { id: idA, resultJson: text('result a') },
    ])
    expect(await first).toBe('result a')
    expect(await second).toBe('result b')
    // A call in a later turn goes in a batch of its own.
    const third = stream.call(request('c'), undefined, decode)
    await flush()
    expect(fake.written).toHaveLength(2)
    fake.answer([{ id: fake.written[1]?.requests?.[0]?.id, resultJson: text('result c') }])
    expect(await third).toBe('result c')
  })

  it('holds calls made while others are in flight until the end of the turn, and sends them together', async () => {
    const first = stream.call(request('a'), undefined, decode)
    await flush()
    expect(fake.written).toHaveLength(1)
    // Two calls in two microtask checkpoints of one turn, while `a` is in flight: one batch.
    const second = stream.call(request('b'), undefined, decode)
    await flush()
    const third = stream.call(request('c'), undefined, decode)
    await flush()
    expect(fake.written).toHaveLength(1)
    await new Promise<void>((resolve) => setImmediate(resolve))
    expect(fake.written.map((batch) => batch.requests?.map((r) => r.function))).toEqual([['a'], ['b', 'c']])
    const ids = fake.written.flatMap((batch) => batch.requests?.map((r) => r.id) ?? [])
    fake.answer(ids.map((id, i) => ({ id, resultJson: text(`result ${i}`) })))
    expect(await Promise.all([first, second, third])).toEqual(['result 0', 'result 1', 'result 2'])
  })

  it('rejects a call whose result fails to decode, and only that call', async () => {
    const bad = outcome(
      stream.call(request('a'), undefined, () => {
        throw new Error('not JSON')
      }),
    )
    const good = stream.call(request('b'), undefined, decode)
    await flush()
    const [idA, idB] = (fake.written[0]?.requests ?? []).map((r) => r.id)
    fake.answer([
      { id: idA, resultJson: text(1) },
      { id: idB, resultJson: text(2) },
    ])
    expect((await bad).error).toEqual(new Error('not JSON'))
    expect(await good).toBe(2)
  })

  it('fails every call in flight at once when the stream breaks, and every later call', async () => {
    const settled = vi.fn()
    const calls = [outcome(stream.call(request('a'), undefined, decode, settled))]
    calls.push(outcome(stream.call(request('b'), undefined, decode, settled)))
    await flush()
    fake.emit('error', { code: status.UNAVAILABLE, message: 'connection reset' })
    const results = await Promise.all(calls)
    expect(results.map((r) => r.code)).toEqual(['unavailable', 'unavailable'])
    expect(settled).toHaveBeenCalledTimes(2)
    expect(stream.usable).toBe(false)
    const later = await outcome(stream.call(request('c'), undefined, decode, settled))
    expect(later.code).toBe('unavailable')
    expect(settled).toHaveBeenCalledTimes(3)
    // Nothing more is written to a broken stream.
    await flush()
    expect(fake.written).toHaveLength(1)
  })

  it('names max_output_bytes when the plugin sent a message too large to take', async () => {
    const call = outcome(stream.call(request('a'), undefined, decode))
    fake.emit('error', { code: status.RESOURCE_EXHAUSTED, details: 'Received message larger than max' })
    const result = await call
    expect(result.code).toBe('resource_exhausted')
    expect(isPluginError(result.error) && result.error.rawMessage).toContain('max_output_bytes (1000)')
  })

  it('fails the calls in flight with unavailable when the plugin ends the stream', async () => {
    const call = outcome(stream.call(request('a'), undefined, decode))
    fake.emit('end')
    expect((await call).code).toBe('unavailable')
  })

  it('close fails the calls in flight and cancels the stream', async () => {
    const call = outcome(stream.call(request('a'), undefined, decode))
    stream.close()
    expect((await call).code).toBe('unavailable')
    expect(fake.canceled).toBe(true)
  })

  it('cancels a call whose signal aborts: canceled at once, the plugin told, a late result ignored', async () => {
    const controller = new AbortController()
    const settled = vi.fn()
    const call = outcome(stream.call(request('a'), controller.signal, decode, settled))
    const other = stream.call(request('b'), undefined, decode)
    await flush()
    const [idA, idB] = (fake.written[0]?.requests ?? []).map((r) => r.id)
    controller.abort()
    expect((await call).code).toBe('canceled')
    expect(settled).toHaveBeenCalledTimes(1)
    await flush()
    expect(fake.written[1]?.requests).toEqual([{ id: idA, cancel: true }])
    fake.answer([
      { id: idA, resultJson: text('too late') },
      { id: idB, resultJson: text('b') },
    ])
    expect(await other).toBe('b')
    expect(settled).toHaveBeenCalledTimes(1)
  })

  describe('deadlines', () => {
    beforeEach(() => {
      vi.useFakeTimers()
    })
    afterEach(() => {
      vi.useRealTimers()
    })

    it('fails each call at its own deadline with deadline_exceeded and tells the plugin', async () => {
      const long = outcome(stream.call(request('long', 500), undefined, decode))
      const short = outcome(stream.call(request('short', 100), undefined, decode))
      await flush()
      const [idLong, idShort] = (fake.written[0]?.requests ?? []).map((r) => r.id)
      expect(fake.written[0]?.requests?.map((r) => r.timeoutMs)).toEqual([500, 100])
      await vi.advanceTimersByTimeAsync(100)
      expect((await short).code).toBe('deadline_exceeded')
      expect(fake.written.at(-1)?.requests).toEqual([{ id: idShort, cancel: true }])
      // The longer call is still waiting for its result, which it gets within its time.
      fake.answer([{ id: idLong, resultJson: text('in time') }])
      expect(await long).toEqual({ value: 'in time' })
    })

    it('a call with no timeout never expires', async () => {
      const settled = vi.fn()
      void stream.call(request('open'), undefined, decode, settled)
      const timed = outcome(stream.call(request('timed', 50), undefined, decode))
      await vi.advanceTimersByTimeAsync(10_000)
      expect((await timed).code).toBe('deadline_exceeded')
      expect(settled).not.toHaveBeenCalled()
    })
  })
})
