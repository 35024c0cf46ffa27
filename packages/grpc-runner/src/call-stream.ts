import type { CallBatch, CallRequest, CallResult, ResultBatch } from '@corral/proto'
import { type AbortSignalLike, PluginError } from '@corral/types'
import { type ServiceError, status } from '@grpc/grpc-js'

/**
 * What {@link CallStream} uses of a `PluginService/CallStream` duplex (`bidi(rpc,
 * pluginService.callStream)` of `@corral/proto`); a unit test passes a fake one.
 */
export interface CallBatchStream {
  write(batch: CallBatch): unknown
  cancel(): void
  on(event: 'data', listener: (batch: ResultBatch) => void): unknown
  on(event: 'error', listener: (error: Partial<ServiceError>) => void): unknown
  on(event: 'end', listener: () => void): unknown
}

interface PendingCall {
  /** Turns the plugin's result into the call's value (or throws the call's error). */
  decode(result: CallResult): unknown
  resolve(value: unknown): void
  reject(error: unknown): void
  function: string
  timeoutMs: number
  /** Epoch ms; 0 for none. */
  deadline: number
  signal: AbortSignalLike | undefined
  onAbort: (() => void) | undefined
  /** Called once when the call settles, however. */
  onSettled: (() => void) | undefined
}

/** One call as it goes to the plugin, on the call stream or as a unary call. */
export interface OutgoingCall {
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
  readonly #stream: CallBatchStream
  readonly #pending = new Map<number, PendingCall>()
  #outbox: CallRequest[] = []
  #flushing = false
  readonly #plugin: string
  #nextId = 1
  #broken: PluginError | undefined
  /**
   * One timer for every deadline, armed for the earliest; a call whose deadline is later than the
   * armed one (the usual case: same timeout, later start) costs no timer operation at all.
   */
  #deadlineTimer: NodeJS.Timeout | undefined
  #deadlineAt = Number.POSITIVE_INFINITY

  /** `maxOutputBytes` only names the limit when the plugin sends a message too large to take. */
  constructor(stream: CallBatchStream, plugin: string, maxOutputBytes: number) {
    this.#plugin = plugin
    this.#stream = stream
    this.#stream.on('data', (batch: ResultBatch) => {
      for (const result of batch.results ?? []) {
        const pending = this.#pending.get(result.id ?? 0)
        if (pending === undefined) continue
        this.#settle(result.id ?? 0, pending)
        // Decoded here, not in a `then` of the caller: one promise and one microtask fewer per call.
        let value: unknown
        try {
          value = pending.decode(result)
        } catch (error) {
          pending.reject(error)
          continue
        }
        pending.resolve(value)
      }
    })
    const broken = (error?: Partial<ServiceError>) =>
      this.failAll(
        error?.code === status.RESOURCE_EXHAUSTED
          ? new PluginError(
              'resource_exhausted',
              `the plugin sent a message larger than its max_output_bytes (${maxOutputBytes}) allows: ${error.details}`,
              { plugin, cause: error },
            )
          : new PluginError('unavailable', `the call stream ended${error ? `: ${error.message}` : ''}`, {
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

  /**
   * Sends one call; the promise settles with `decode(result)` when its result arrives, or fails at
   * its deadline, on abort, or when the stream breaks. `onSettled` runs once, however it ends.
   */
  call<T>(
    request: OutgoingCall,
    signal: AbortSignalLike | undefined,
    decode: (result: CallResult) => T,
    onSettled?: () => void,
  ): Promise<T> {
    if (this.#broken !== undefined) {
      onSettled?.()
      return Promise.reject(this.#broken)
    }
    const id = this.#nextId
    this.#nextId = (this.#nextId % 0xffff_ffff) + 1
    return new Promise<T>((resolve, reject) => {
      const pending: PendingCall = {
        decode,
        resolve: resolve as (value: unknown) => void,
        reject,
        function: request.function,
        timeoutMs: request.timeoutMs,
        deadline: request.timeoutMs > 0 ? Date.now() + request.timeoutMs : 0,
        signal,
        onAbort: undefined,
        onSettled,
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
      if (pending.deadline !== 0 && pending.deadline < this.#deadlineAt) this.#armDeadline(pending.deadline)
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
    clearTimeout(this.#deadlineTimer)
    for (const [id, pending] of this.#pending) {
      this.#settle(id, pending)
      pending.reject(error)
    }
  }

  close(): void {
    this.failAll(new PluginError('unavailable', 'the plugin is stopping', { plugin: this.#plugin }))
    this.#stream.cancel()
  }

  #armDeadline(at: number): void {
    clearTimeout(this.#deadlineTimer)
    this.#deadlineAt = at
    // Left armed when its call ends (it finds nothing and stops): clearing and setting one per call
    // is what this saves. Unref'd: it never keeps the host alive.
    this.#deadlineTimer = setTimeout(this.#expire, Math.max(0, at - Date.now()))
    this.#deadlineTimer.unref()
  }

  /** Fails the calls whose deadline has passed, and arms the timer for the earliest one left. */
  readonly #expire = (): void => {
    this.#deadlineTimer = undefined
    this.#deadlineAt = Number.POSITIVE_INFINITY
    const now = Date.now()
    let next = Number.POSITIVE_INFINITY
    for (const [id, pending] of this.#pending) {
      if (pending.deadline === 0) continue
      if (pending.deadline <= now) {
        this.#cancel(id, pending)
        pending.reject(
          new PluginError(
            'deadline_exceeded',
            `${pending.function} took longer than ${pending.timeoutMs} ms`,
            {
              plugin: this.#plugin,
            },
          ),
        )
      } else if (pending.deadline < next) next = pending.deadline
    }
    if (next !== Number.POSITIVE_INFINITY) this.#armDeadline(next)
  }

  #cancel(id: number, pending: PendingCall): void {
    this.#settle(id, pending)
    this.#send({ id, cancel: true })
  }

  /**
   * Queues a request; what is queued leaves as one batch. A call alone on the stream leaves at the
   * end of the current microtask checkpoint: it waits for nothing. While other calls are in flight
   * (their results on the way), the batch leaves at the end of this turn of the event loop
   * (`setImmediate`), with every call made meanwhile: the callers of all the results read in this
   * turn, from this plugin and from others. Without it, callers that spread their calls over several
   * plugins (one result from each starts one call to each) would send one message per call.
   */
  #send(request: CallRequest): void {
    this.#outbox.push(request)
    if (this.#flushing) return
    this.#flushing = true
    if (this.#pending.size <= 1) queueMicrotask(this.#flush)
    else setImmediate(this.#flush)
  }

  readonly #flush = (): void => {
    this.#flushing = false
    const requests = this.#outbox
    this.#outbox = []
    if (this.#broken === undefined) this.#stream.write({ requests })
  }

  #settle(id: number, pending: PendingCall): void {
    this.#pending.delete(id)
    if (pending.onAbort !== undefined) pending.signal?.removeEventListener('abort', pending.onAbort)
    pending.onSettled?.()
  }
}
