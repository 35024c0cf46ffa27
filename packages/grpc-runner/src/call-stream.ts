import {
  bidi,
  type CallBatch,
  type CallRequest,
  type CallResult,
  pluginService,
  type ResultBatch,
} from '@corral/proto'
import { type AbortSignalLike, PluginError } from '@corral/types'
import type { Client, ClientDuplexStream } from '@grpc/grpc-js'

interface PendingCall {
  resolve(result: CallResult): void
  reject(error: PluginError): void
  timer: NodeJS.Timeout | undefined
  signal: AbortSignalLike | undefined
  onAbort: (() => void) | undefined
}

/** One call as the multiplexer sends it. */
export interface StreamCall {
  function: string
  argsJson: Uint8Array
  timeoutMs: number
  token: string
}

/**
 * Every call to one plugin process over one `PluginService/CallStream`: requests tagged with ids
 * go out on one HTTP/2 stream and results come back in any order, which costs a fraction of a
 * unary RPC per call. Requests made in the same turn of the event loop leave as one batch (one
 * message), as the plugin's results do. Deadlines and cancellation are kept per call: the host fails
 * the call on time and tells the plugin with a cancel request.
 */
export class CallStream {
  readonly #stream: ClientDuplexStream<CallBatch, ResultBatch>
  readonly #pending = new Map<number, PendingCall>()
  #outbox: CallRequest[] = []
  #flushing = false
  readonly #plugin: string
  #nextId = 1
  #broken: PluginError | undefined

  constructor(rpc: Client, plugin: string) {
    this.#plugin = plugin
    this.#stream = bidi(rpc, pluginService.callStream)
    this.#stream.on('data', (batch: ResultBatch) => {
      for (const result of batch.results ?? []) {
        const pending = this.#pending.get(result.id ?? 0)
        if (pending === undefined) continue
        this.#settle(result.id ?? 0, pending)
        pending.resolve(result)
      }
    })
    const broken = (error?: Error) =>
      this.failAll(
        new PluginError('unavailable', `the call stream ended${error ? `: ${error.message}` : ''}`, {
          plugin,
          ...(error ? { cause: error } : {}),
        }),
      )
    this.#stream.on('error', broken)
    this.#stream.on('end', () => broken())
  }

  /** Whether the stream can take calls. */
  get usable(): boolean {
    return this.#broken === undefined
  }

  call(request: StreamCall, signal: AbortSignalLike | undefined): Promise<CallResult> {
    if (this.#broken !== undefined) return Promise.reject(this.#broken)
    const id = this.#nextId
    this.#nextId = (this.#nextId % 0xffff_ffff) + 1
    return new Promise<CallResult>((resolve, reject) => {
      const pending: PendingCall = { resolve, reject, timer: undefined, signal, onAbort: undefined }
      if (request.timeoutMs > 0) {
        pending.timer = setTimeout(() => {
          this.#cancel(id, pending)
          reject(
            new PluginError(
              'deadline_exceeded',
              `${request.function} took longer than ${request.timeoutMs} ms`,
              {
                plugin: this.#plugin,
              },
            ),
          )
        }, request.timeoutMs)
      }
      if (signal !== undefined) {
        pending.onAbort = () => {
          this.#cancel(id, pending)
          reject(
            new PluginError('canceled', `${request.function} was canceled`, {
              plugin: this.#plugin,
              cause: signal.reason,
            }),
          )
        }
        signal.addEventListener('abort', pending.onAbort, { once: true })
      }
      this.#pending.set(id, pending)
      this.#send({
        id,
        function: request.function,
        argsJson: request.argsJson,
        timeoutMs: request.timeoutMs,
        token: request.token,
      })
    })
  }

  /** Fails every call in flight with `error` at once, and every later one. */
  failAll(error: PluginError): void {
    this.#broken ??= error
    for (const [id, pending] of this.#pending) {
      this.#settle(id, pending)
      pending.reject(error)
    }
  }

  close(): void {
    this.failAll(new PluginError('unavailable', 'the plugin is stopping', { plugin: this.#plugin }))
    this.#stream.cancel()
  }

  #cancel(id: number, pending: PendingCall): void {
    this.#settle(id, pending)
    this.#send({ id, cancel: true })
  }

  /**
   * Queues a request; what is queued leaves as one batch at the end of the current microtask
   * checkpoint (a lone call waits for nothing; calls started together travel together).
   */
  #send(request: CallRequest): void {
    this.#outbox.push(request)
    if (this.#flushing) return
    this.#flushing = true
    queueMicrotask(this.#flush)
  }

  readonly #flush = (): void => {
    this.#flushing = false
    const requests = this.#outbox
    this.#outbox = []
    if (this.#broken === undefined) this.#stream.write({ requests })
  }

  #settle(id: number, pending: PendingCall): void {
    this.#pending.delete(id)
    clearTimeout(pending.timer)
    if (pending.onAbort !== undefined) pending.signal?.removeEventListener('abort', pending.onAbort)
  }
}
