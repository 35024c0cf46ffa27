import { EventEmitter } from 'node:events'
import { setImmediate as nextTurn } from 'node:timers/promises'
import {
  type CallBatch,
  type CallRequest,
  type CallResult,
  type ResultBatch,
  resultBatchBytes,
} from '@corral/proto'
import type { ServerDuplexStream } from '@grpc/grpc-js'
import { describe, expect, it } from 'vitest'
import { type CallRunner, serveCallStream } from './call-stream.js'
import type { HostConnection } from './host-client.js'
import { RunningCall } from './running-call.js'

/** A stand-in for grpc-js's server stream: what the code under test writes, and its end. */
class FakeStream extends EventEmitter {
  readonly written: ResultBatch[] = []
  ended = false
  write(batch: ResultBatch): boolean {
    this.written.push(batch)
    return true
  }
  end(): void {
    this.ended = true
  }
  ids(): number[][] {
    return this.written.map((batch) => (batch.results ?? []).map((result) => result.id ?? 0))
  }
}

/** Runs `echo` at once and `later` when the test resolves it; keeps every call's context. */
function runner() {
  const running = new Map<number, RunningCall>()
  const pending = new Map<number, (result: CallResult) => void>()
  const calls: CallRunner = {
    start(request: CallRequest) {
      const call = new RunningCall({} as HostConnection, request.token ?? '', undefined)
      running.set(request.id ?? 0, call)
      return call
    },
    run(request: CallRequest) {
      const id = request.id ?? 0
      if (request.function === 'later') return new Promise((resolve) => pending.set(id, resolve))
      return { id, resultJson: request.argsJson ?? new Uint8Array(0) }
    },
  }
  return { calls, running, pending }
}

function serve() {
  const stream = new FakeStream()
  const { calls, running, pending } = runner()
  serveCallStream(stream as unknown as ServerDuplexStream<CallBatch, ResultBatch>, calls)
  const send = (...requests: CallRequest[]) => stream.emit('data', { requests })
  return { stream, running, pending, send }
}

describe('serveCallStream', () => {
  it('sends the results ready by the end of a batch as one batch', () => {
    const { stream, send } = serve()
    send({ id: 1, function: 'echo' }, { id: 2, function: 'echo' }, { id: 3, function: 'echo' })
    expect(stream.ids()).toEqual([[1, 2, 3]])
  })

  it('sends a later result in a batch of its own on a later turn', async () => {
    const { stream, pending, send } = serve()
    send({ id: 1, function: 'later' }, { id: 2, function: 'echo' })
    expect(stream.ids()).toEqual([[2]])
    pending.get(1)?.({ id: 1, resultJson: Buffer.from('1') })
    await nextTurn()
    await nextTurn()
    expect(stream.ids()).toEqual([[2], [1]])
  })

  it('starts a new batch before the results would pass resultBatchBytes', () => {
    const { stream, send } = serve()
    const third = Buffer.alloc(Math.ceil(resultBatchBytes / 3))
    send(
      { id: 1, function: 'echo', argsJson: third },
      { id: 2, function: 'echo', argsJson: third },
      { id: 3, function: 'echo', argsJson: third },
      { id: 4, function: 'echo', argsJson: Buffer.alloc(resultBatchBytes * 2) },
    )
    expect(stream.ids()).toEqual([[1, 2], [3], [4]])
  })

  it('aborts a call the host cancels, and does not send its result', async () => {
    const { stream, running, pending, send } = serve()
    send({ id: 1, function: 'later' })
    send({ id: 1, cancel: true })
    expect(running.get(1)?.aborted).toBe(true)
    expect(running.get(1)?.signal.reason).toMatchObject({ code: 'canceled' })
    pending.get(1)?.({ id: 1, resultJson: Buffer.from('1') })
    await nextTurn()
    await nextTurn()
    expect(stream.ids()).toEqual([])
  })

  it('aborts every running call when the stream ends, and ends its side', () => {
    const { stream, running, send } = serve()
    send({ id: 1, function: 'later' }, { id: 2, function: 'later' })
    stream.emit('end')
    expect([running.get(1)?.aborted, running.get(2)?.aborted]).toEqual([true, true])
    expect(running.get(2)?.signal.reason).toMatchObject({
      code: 'canceled',
      rawMessage: 'the call stream ended',
    })
    expect(stream.ended).toBe(true)
  })
})
