import type { Worker } from 'node:worker_threads'
import type { AbortSignalLike, HostCallContext, HostCallHandler, PluginErrorData } from '@corral/types'
import { PluginError } from '@corral/types'
import type { AbiName, ExtismLimits } from '../abi/guest-abi.js'
import type { ChannelMessage } from '../channel/channel.js'
import { createChannelBuffer, HostChannelEnd, MessageKind, writeInput } from '../channel/channel.js'
import type { WorkerStartMessage, WorkerStatusMessage } from '../channel/worker-messages.js'
import type { WasiOptions } from '../worker/wasi.js'
import type { SpareWorkers } from './spare-workers.js'

/** What every instance of one plugin is started with. */
export interface InstanceSettings {
  module: WebAssembly.Module
  abi: AbiName
  plugin: string
  maxOutputBytes: number
  /** The largest host call argument taken (`max_host_call_bytes`). */
  maxHostCallBytes: number
  memoryMb: number
  wasi: WasiOptions | undefined
  /** The Extism kernel's limits (an Extism plugin only). */
  extism: ExtismLimits
  hostApi: HostCallHandler
  spares: SpareWorkers
  /** How long instantiation (and `_initialize`) may take. */
  startTimeoutMs: number
  /**
   * Called once when a started instance is lost to a crash: it trapped (or failed so that it must be
   * discarded), its worker died, or it was stopped at a call's deadline. Not for a cancellation
   * (the caller's choice) nor for a {@link WorkerHandle.terminate} without a reason (a shutdown).
   */
  onCrash?: ((error: PluginError) => void) | undefined
}

/** One call's limits and identity. */
export interface InstanceCallOptions {
  /** Epoch milliseconds; past it the worker is stopped and the call fails with `deadline_exceeded`. */
  deadline: number
  signal?: AbortSignalLike | undefined
  context: HostCallContext
  /** What the call's output means: JSON by default ({@link jsonOutput}); {@link bytesOutput} for a bytes call. */
  decode?: OutputDecoder
}

/**
 * Turns a call's output into the call's value; throws a {@link PluginError} for output it cannot
 * read. The guest always writes bytes: whether they are JSON is the caller's business.
 */
export type OutputDecoder = (output: Uint8Array) => unknown

const decoder = new TextDecoder()

/** The Corral ABI's contract: the output is JSON text, none meaning `null`. */
export const jsonOutput: OutputDecoder = (output) => {
  if (output.length === 0) return null
  try {
    return JSON.parse(decoder.decode(output))
  } catch {
    throw new PluginError('plugin_error', 'the plugin returned output that is not JSON')
  }
}

/** A bytes call's output: the bytes themselves, copied out of the channel. */
export const bytesOutput: OutputDecoder = (output) => output.slice()

/** One call on an instance, from dispatch to settlement. */
interface GuestCall {
  /** This instance's sequence number of the call. */
  seq: number
  fn: string
  /** JSON text, encoded straight into shared memory, or the bytes of a bytes call. */
  input: string | Uint8Array
  context: HostCallContext
  decode: OutputDecoder
  resolve(value: unknown): void
  reject(error: PluginError): void
  /** Left in the mailbox behind the running call; false once it is known to run. */
  queued: boolean
}

/** How a call ended, read from the worker's final message. */
type Outcome = { ok: true; value: unknown } | { ok: false; error: PluginError; discard: boolean }

/**
 * A call whose instance stopped before the call started: nothing of it ran, so the caller may run
 * it on another instance.
 */
export class CallNotStarted extends PluginError {
  constructor(plugin: string) {
    super('unavailable', 'the instance stopped before the call started', { plugin })
  }
}

/**
 * How long a call may have been running and still get the next one queued behind it. Pipelining
 * pays off for short calls; a call that runs longer keeps its queue empty, so that a slow call
 * holds up at most what was queued in its first moments.
 */
const pipelineWindowMs = 2

const encoder = new TextEncoder()

function workerExitError(plugin: string, error: unknown): PluginError {
  const code = (error as { code?: string } | undefined)?.code
  if (code === 'ERR_WORKER_OUT_OF_MEMORY') {
    return new PluginError('resource_exhausted', 'the instance worker ran out of memory', {
      plugin,
      cause: error,
    })
  }
  return new PluginError(
    'plugin_trap',
    `the instance worker stopped: ${String((error as Error)?.message ?? error)}`,
    {
      plugin,
      cause: error,
    },
  )
}

/**
 * The host's handle of one worker thread, which runs one instance of the plugin's module: it runs
 * one call at a time over the shared-memory channel (and may hold the next one queued, see
 * `channel.ts`), serves the guest's host calls asynchronously, and is stopped for real (the thread
 * is terminated) when a call runs past its deadline or is canceled.
 */
export class WorkerHandle {
  readonly #worker: Worker
  readonly #end: HostChannelEnd
  readonly #options: InstanceSettings
  #alive = true
  /** The running call first, then at most one queued in the mailbox. */
  readonly #calls: GuestCall[] = []
  /** A second call that found the mailbox busy: it goes out when the instance drains. */
  #waiting: GuestCall | undefined
  /** A chunked call still going out. */
  #posting: Promise<void> | undefined
  #pumping = false
  #lastSeq = 0
  /** When the running call went out (performance.now()). */
  #runningSince = 0
  /** Whether the instance has started (a loss before that is a failed start, not a crash). */
  #started = false
  /** The plugin config generation this instance ran `corral_init` with (0: none). */
  configGeneration = 0

  private constructor(worker: Worker, buffer: SharedArrayBuffer, options: InstanceSettings) {
    this.#worker = worker
    this.#end = new HostChannelEnd(buffer)
    this.#options = options
    worker.on('error', (error) => this.#stop(workerExitError(options.plugin, error), true))
    worker.on('exit', (code) =>
      this.#stop(workerExitError(options.plugin, new Error(`exit code ${code}`)), true),
    )
  }

  /** Starts an instance: takes a spare worker and instantiates the guest in it. */
  static start(options: InstanceSettings): Promise<WorkerHandle> {
    const buffer = createChannelBuffer()
    const worker = options.spares.take()
    const handle = new WorkerHandle(worker, buffer, options)
    return new Promise<WorkerHandle>((resolve, reject) => {
      const fail = (error: PluginError) => {
        cleanup()
        void handle.terminate(error)
        reject(error)
      }
      const onStatus = (status: WorkerStatusMessage) => {
        if (status.type === 'warmed') return // the spare's answer to its warm-up (spare-workers.ts)
        if (status.type === 'ready') {
          cleanup()
          handle.#started = true
          resolve(handle)
        } else {
          fail(PluginError.fromData(status.error))
        }
      }
      const onError = (error: unknown) => fail(workerExitError(options.plugin, error))
      const onExit = (code: number) => fail(workerExitError(options.plugin, new Error(`exit code ${code}`)))
      const timer = setTimeout(
        () =>
          fail(
            new PluginError(
              'deadline_exceeded',
              `instantiation took longer than ${options.startTimeoutMs} ms`,
              {
                plugin: options.plugin,
              },
            ),
          ),
        options.startTimeoutMs,
      )
      const cleanup = () => {
        clearTimeout(timer)
        worker.off('message', onStatus)
        worker.off('error', onError)
        worker.off('exit', onExit)
      }
      worker.on('message', onStatus)
      worker.on('error', onError)
      worker.on('exit', onExit)
      const start: WorkerStartMessage = {
        type: 'start',
        module: options.module,
        abi: options.abi,
        plugin: options.plugin,
        buffer,
        maxOutputBytes: options.maxOutputBytes,
        memoryMb: options.memoryMb,
        wasi: options.wasi,
        extism: options.extism,
      }
      worker.postMessage(start)
    })
  }

  /** Whether the instance can still serve (not stopped, not discarded). */
  get alive(): boolean {
    return this.#alive
  }

  /**
   * Whether a call can be queued behind the running one now: exactly one call runs, it started
   * moments ago, and nothing else waits.
   */
  get canQueue(): boolean {
    return (
      this.#alive &&
      this.#calls.length === 1 &&
      this.#waiting === undefined &&
      performance.now() - this.#runningSince < pipelineWindowMs
    )
  }

  /**
   * Calls `fn` with `input` (JSON text, or bytes) and resolves with its output as `options.decode`
   * reads it (by default parsed JSON, `null` for none).
   * Rejects with a {@link PluginError}; after a trap, a limit, a deadline or a cancellation the
   * instance is no longer {@link WorkerHandle.alive}. A call queued behind another that the instance
   * never started rejects with {@link CallNotStarted}.
   */
  call(fn: string, input: string | Uint8Array, options: InstanceCallOptions): Promise<unknown> {
    if (!this.#alive) return Promise.reject(new CallNotStarted(this.#options.plugin))
    if (this.#calls.length >= 2 || this.#waiting !== undefined) {
      return Promise.reject(new PluginError('internal', 'instance is busy', { plugin: this.#options.plugin }))
    }
    return new Promise<unknown>((resolve, reject) => {
      const { plugin } = this.#options
      const { signal, deadline } = options
      const finish = () => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
      }
      const call: GuestCall = {
        seq: ++this.#lastSeq | 0,
        fn,
        input,
        context: options.context,
        decode: options.decode ?? jsonOutput,
        queued: false,
        resolve: (value) => {
          finish()
          resolve(value)
        },
        reject: (error) => {
          finish()
          reject(error)
        },
      }
      const onAbort = () => this.#expire(call, new PluginError('canceled', `${fn} was canceled`, { plugin }))
      const timer = setTimeout(
        () =>
          this.#expire(call, new PluginError('deadline_exceeded', `${fn} ran past its deadline`, { plugin })),
        Math.max(0, deadline - Date.now()),
      )
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#dispatch(call)
    })
  }

  /** Sends a call now, queues it behind the running one, or keeps it until the instance drains. */
  #dispatch(call: GuestCall): void {
    if (this.#calls.length === 0) {
      this.#calls.push(call)
      this.#send(call)
      void this.#pump()
    } else if (this.#end.queue(call.fn, call.input, call.seq, (this.#calls[0] as GuestCall).seq)) {
      call.queued = true
      this.#calls.push(call)
    } else {
      this.#waiting = call
    }
  }

  /**
   * Writes a call into the channel: straight into shared memory when it fits; otherwise chunked,
   * and the pump waits for the last chunk to be across before it reads.
   */
  #send(call: GuestCall): void {
    this.#runningSince = performance.now()
    const { fn, input } = call
    this.#end.setCallSeq(call.seq)
    const area = this.#end.area
    const name = encoder.encodeInto(fn, area)
    const written = writeInput(input, area.subarray(name.written))
    if (written !== undefined) {
      this.#end.postInPlace(MessageKind.call, name.written, name.written + written)
      return
    }
    const nameBytes = encoder.encode(fn)
    const inputBytes = typeof input === 'string' ? encoder.encode(input) : input
    const payload = new Uint8Array(nameBytes.length + inputBytes.length)
    payload.set(nameBytes)
    payload.set(inputBytes, nameBytes.length)
    this.#posting = this.#end.send(MessageKind.call, nameBytes.length, payload)
  }

  /**
   * Reads the worker's messages while calls are in flight: serves host calls for the running call,
   * settles each call as its result or failure arrives, and moves the queue along.
   */
  async #pump(): Promise<void> {
    if (this.#pumping) return
    this.#pumping = true
    const { plugin } = this.#options
    try {
      while (this.#alive && this.#calls.length > 0) {
        if (this.#posting !== undefined) {
          const posting = this.#posting
          this.#posting = undefined
          await posting
        }
        const message = await this.#end.receive()
        if (message === undefined || !this.#alive) return
        const running = this.#calls[0] as GuestCall
        if (message.kind === MessageKind.hostCall) {
          const method = decoder.decode(message.payload.subarray(0, message.aux))
          const argsBytes = message.payload.length - message.aux
          const response =
            argsBytes > this.#options.maxHostCallBytes
              ? JSON.stringify({
                  error: {
                    code: 'resource_exhausted',
                    message: `host call ${method}: ${argsBytes} bytes of arguments, more than max_host_call_bytes ${this.#options.maxHostCallBytes}`,
                  },
                })
              : await this.#hostCall(
                  method,
                  decoder.decode(message.payload.subarray(message.aux)),
                  running.context,
                )
          if (!this.#alive) return
          if (!this.#end.postText(MessageKind.hostResult, response)) {
            await this.#end.send(MessageKind.hostResult, 0, encoder.encode(response))
          }
          continue
        }
        if (message.kind !== MessageKind.result && message.kind !== MessageKind.failure) {
          throw new PluginError('internal', `unexpected channel message ${message.kind}`, { plugin })
        }
        this.#calls.shift()
        const outcome = this.#outcome(running, message)
        this.#end.markRead()
        if (!outcome.ok && outcome.discard) {
          // The worker takes no queued call after a discarding failure: it can run elsewhere.
          running.reject(outcome.error)
          void this.terminate(outcome.error)
          return
        }
        this.#advance()
        if (outcome.ok) running.resolve(outcome.value)
        else running.reject(outcome.error)
      }
    } catch (error) {
      void this.terminate(PluginError.from(error, 'internal', plugin))
    } finally {
      this.#pumping = false
    }
  }

  /** After a call settled: the queued call runs now (the worker gets its ack), or a waiting one goes out. */
  #advance(): void {
    const next = this.#calls[0]
    if (next !== undefined) {
      next.queued = false
      this.#runningSince = performance.now()
      this.#end.ack()
    } else if (this.#waiting !== undefined) {
      const waiting = this.#waiting
      this.#waiting = undefined
      this.#calls.push(waiting)
      this.#send(waiting)
    }
  }

  /** What a result or failure message means for `call`. */
  #outcome(call: GuestCall, message: ChannelMessage): Outcome {
    const { plugin } = this.#options
    if (message.kind === MessageKind.result) {
      try {
        return { ok: true, value: call.decode(message.payload) }
      } catch (error) {
        return { ok: false, error: PluginError.from(error, 'plugin_error', plugin), discard: false }
      }
    }
    const data = JSON.parse(decoder.decode(message.payload)) as PluginErrorData & { discard: boolean }
    return { ok: false, error: PluginError.fromData({ ...data, plugin }), discard: data.discard }
  }

  /** A call's deadline passed or its signal aborted: drop it if it has not started, else stop the instance. */
  #expire(call: GuestCall, error: PluginError): void {
    if (!this.#alive) return
    if (this.#waiting === call) {
      this.#waiting = undefined
      call.reject(error)
      return
    }
    const at = this.#calls.indexOf(call)
    if (at < 0) return
    if (call.queued && this.#end.unqueue()) {
      this.#calls.splice(at, 1)
      call.reject(error)
      return
    }
    void this.terminate(error)
  }

  /** Runs one host call; whatever happens, the guest gets `{"ok": …}` or `{"error": …}`. */
  async #hostCall(method: string, args: string, context: HostCallContext): Promise<string> {
    try {
      let parsed: unknown
      try {
        parsed = args.length === 0 ? {} : JSON.parse(args)
      } catch {
        throw new PluginError('invalid_argument', `host call ${method}: arguments are not JSON`)
      }
      const result = await this.#options.hostApi(method, parsed, context)
      return JSON.stringify({ ok: result ?? null })
    } catch (error) {
      const { code, rawMessage } = PluginError.from(error, 'internal')
      return JSON.stringify({ error: { code, message: rawMessage } })
    }
  }

  /**
   * Marks the instance stopped and settles what was in flight: a call whose result already sits in
   * the channel keeps it; the running call fails with `error`; a queued call the worker had not
   * taken, and a waiting one, fail with {@link CallNotStarted}.
   */
  #stop(error: PluginError, crashed: boolean): void {
    if (!this.#alive) return
    this.#alive = false
    if (crashed && this.#started) this.#options.onCrash?.(error)
    const { plugin } = this.#options
    const calls = this.#calls.splice(0)
    const finished = calls.length > 0 ? this.#end.peekFinal() : undefined
    this.#end.wake()
    if (finished !== undefined) {
      const call = calls.shift() as GuestCall
      const outcome = this.#outcome(call, finished)
      if (outcome.ok) call.resolve(outcome.value)
      else call.reject(outcome.error)
    }
    for (const call of calls) {
      if (call.queued && this.#end.unqueue()) call.reject(new CallNotStarted(plugin))
      else call.reject(error)
    }
    const waiting = this.#waiting
    this.#waiting = undefined
    waiting?.reject(new CallNotStarted(plugin))
  }

  /**
   * Stops the worker thread by force. With `reason` (a deadline, a trap, a cancellation, a
   * quarantine), the running call fails with it, and the loss is a crash
   * ({@link InstanceSettings.onCrash}) unless it is a cancellation. Without one, the plugin is
   * shutting down: calls in flight fail with `unavailable`, and nothing is reported.
   */
  async terminate(reason?: PluginError): Promise<void> {
    if (reason === undefined) {
      const shuttingDown = new PluginError('unavailable', 'the plugin is shutting down', {
        plugin: this.#options.plugin,
      })
      this.#stop(shuttingDown, false)
    } else {
      this.#stop(reason, reason.code !== 'canceled')
    }
    await this.#worker.terminate()
  }
}
