import {
  type CallBatch,
  type CallRequest,
  type CallResult,
  type ResultBatch,
  resultBatchBytes,
} from '@corral/proto'
import { PluginError } from '@corral/types'
import type { ServerDuplexStream } from '@grpc/grpc-js'
import type { RunningCall } from './running-call.js'

/** What the call stream needs of the runtime: start a call's context, and run it. */
export interface CallRunner {
  start(request: CallRequest): RunningCall
  run(request: CallRequest, running: RunningCall): CallResult | Promise<CallResult>
}

/** What a result costs in a batch besides its JSON: its id and the message framing. */
const resultEnvelopeBytes = 16

/**
 * Serves the host's `CallStream`: each batch of requests runs at once; results ready by the end of
 * the batch leave as one batch, later ones as a batch per turn of the event loop. A request with
 * `cancel` aborts the call of its id; the stream's end aborts every call still running, and the
 * result of an aborted call is not sent.
 */
export function serveCallStream(
  stream: ServerDuplexStream<CallBatch, ResultBatch>,
  runner: CallRunner,
): void {
  const calls = new Map<number, RunningCall>()
  let outbox: CallResult[] = []
  let outboxBytes = 0
  // While a batch is being run, results wait for the flush at its end: no timer for them.
  let inBatch = false
  let scheduled = false
  const flush = () => {
    scheduled = false
    if (outbox.length === 0) return
    const results = outbox
    outbox = []
    outboxBytes = 0
    stream.write({ results })
  }
  const send = (id: number, running: RunningCall, result: CallResult) => {
    calls.delete(id)
    if (running.aborted) return
    // The host refuses a message above max(max_output_bytes, resultBatchBytes): a batch leaves
    // before it would pass resultBatchBytes, so only a result too large on its own is refused.
    const bytes = (result.resultJson?.length ?? 0) + (result.errorJson?.length ?? 0) + resultEnvelopeBytes
    if (outboxBytes > 0 && outboxBytes + bytes > resultBatchBytes) flush()
    outbox.push(result)
    outboxBytes += bytes
    if (inBatch || scheduled) return
    scheduled = true
    setImmediate(flush)
  }
  stream.on('data', (batch: CallBatch) => {
    inBatch = true
    for (const request of batch.requests ?? []) {
      const id = request.id ?? 0
      if (request.cancel) {
        calls.get(id)?.abort(new PluginError('canceled', 'the host canceled the call'))
        continue
      }
      const running = runner.start(request)
      calls.set(id, running)
      const result = runner.run(request, running)
      if (result instanceof Promise) void result.then((done) => send(id, running, done))
      else send(id, running, result)
    }
    inBatch = false
    flush()
  })
  const abortAll = () => {
    for (const running of calls.values()) running.abort(new PluginError('canceled', 'the call stream ended'))
    calls.clear()
  }
  stream.on('end', () => {
    abortAll()
    stream.end()
  })
  stream.on('error', abortAll)
}
