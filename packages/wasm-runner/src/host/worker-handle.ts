import type { Worker } from 'node:worker_threads'
import type { AbortSignalLike, HostCallContext, HostCallHandler, PluginErrorData } from '@corral/types'
import { PluginError } from '@corral/types'
import type { AbiName, ExtismLimits } from '../abi/guest-abi.js'
import type { ChannelMessage } from '../channel/channel.js'
import { HostChannelEnd, MessageKind, nextSeq, ringSlots } from '../channel/channel.js'
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
  /**
   * Whether other calls of the plugin are in flight: the worker's wake-up for this one may then
   * wait for the end of this turn of the event loop, and wake it once for all queued in the turn.
   */
  concurrent?: boolean
}

/**
 * Turns the output of `call.fn` of `call.plugin` into the call's value; throws a {@link PluginError}
 * naming both for output it cannot read. The guest always writes bytes: whether they are JSON is
 * the caller's business.
 */
export type OutputDecoder = (output: Uint8Array, call: { plugin: string; fn: string }) => unknown

const decoder = new TextDecoder()

/** The Corral ABI's contract: the output is JSON text, none meaning `null`. */
export const jsonOutput: OutputDecoder = (output, { plugin, fn }) => {
  if (output.length === 0) return null
  try {
    return JSON.parse(decoder.decode(output))
  } catch (error) {
    throw new PluginError('plugin_error', `${fn} returned output that is not JSON`, { plugin, cause: error })
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
  /** Its request slot, while the host may take it back; -1 for a call sent through the exchange area. */
  slot: number
  /** {@link InstanceCallOptions.concurrent}. */
  concurrent: boolean
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
 * How long a call may have been running and still get more queued behind it. Pipelining pays off
 * for short calls; a call that runs longer keeps its queue as it is, so that a slow call holds up
 * at most what was queued in its first moments.
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
 * one call at a time over the shared-memory channel (and may hold more queued behind it, up to
 * {@link ringSlots}, see `channel.ts`), serves the guest's host calls asynchronously, and is stopped
 * for real (the thread is terminated) when a call runs past its deadline or is canceled.
 */
export class WorkerHandle {
  readonly #worker: Worker
  readonly #end: HostChannelEnd
  readonly #options: InstanceSettings
  #alive = true
  /** The calls in the channel, in order: the running one first, then those queued behind it. */
  readonly #calls: GuestCall[] = []
  /** Calls not yet in the channel (the ring was full, or a call too large for a slot found it busy). */
  readonly #waiting: GuestCall[] = []
  /** A call too large for a slot still going out. */
  #posting: Promise<void> | undefined
  #pumping = false
  #lastSeq = 0
  /** When the oldest call in the channel started, as near as the host knows (performance.now()). */
  #headSince = 0
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

  /**
   * Starts an instance: takes a spare worker and instantiates the guest in it. The worker is sent
   * its module before anything else is set up here, which then runs while it instantiates; what it
   * answers waits in its port until this thread's next turn, by which time the listeners are on.
   */
  static start(options: InstanceSettings): Promise<WorkerHandle> {
    const start: WorkerStartMessage = {
      type: 'start',
      module: options.module,
      abi: options.abi,
      plugin: options.plugin,
      maxOutputBytes: options.maxOutputBytes,
      memoryMb: options.memoryMb,
      wasi: options.wasi,
      extism: options.extism,
    }
    const { worker, buffer } = options.spares.take(start)
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
    })
  }

  /** Whether the instance can still serve (not stopped, not discarded). */
  get alive(): boolean {
    return this.#alive
  }

  /** The most calls the instance holds at once, running and queued. */
  readonly maxCalls = ringSlots

  /** Whether a call can be queued behind the running one now: one runs, and it started moments ago. */
  get canQueue(): boolean {
    return this.#alive && this.#calls.length > 0 && performance.now() - this.#headSince < pipelineWindowMs
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
    if (this.#calls.length + this.#waiting.length >= ringSlots) {
      return Promise.reject(new PluginError('internal', 'instance is busy', { plugin: this.#options.plugin }))
    }
    this.#lastSeq = nextSeq(this.#lastSeq)
    return new Promise<unknown>((resolve, reject) => {
      const { plugin } = this.#options
      const { signal, deadline } = options
      const finish = () => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
      }
      const call: GuestCall = {
        seq: this.#lastSeq,
        fn,
        input,
        context: options.context,
        decode: options.decode ?? jsonOutput,
        slot: -1,
        concurrent: options.concurrent ?? false,
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

  /** Puts a call into the channel (behind those already there), or keeps it until there is room. */
  #dispatch(call: GuestCall): void {
    if (this.#calls.length === 0 && this.#waiting.length === 0) this.#headSince = performance.now()
    this.#waiting.push(call)
    this.#flush()
    void this.#pump()
  }

  /**
   * Writes a call into a request slot; one too large for a slot goes through the exchange area,
   * only when no other call is in the channel (the pump waits for it to be across before it reads).
   * False when it must wait.
   */
  #post(call: GuestCall): boolean {
    const { fn, input } = call
    // Behind calls not yet settled, the call waits its turn anyway: its wake-up may wait for the
    // turn's end. So may a call among others of the plugin: the worker then wakes once for them.
    const wakeLater = this.#calls.length > 0 || call.concurrent
    call.slot = this.#end.queue(fn, input, call.seq, wakeLater)
    if (call.slot < 0) {
      if (this.#calls.length > 0) return false
      const nameBytes = encoder.encode(fn)
      const inputBytes = typeof input === 'string' ? encoder.encode(input) : input
      const payload = new Uint8Array(nameBytes.length + inputBytes.length)
      payload.set(nameBytes)
      payload.set(inputBytes, nameBytes.length)
      this.#posting = this.#end.sendLarge(nameBytes.length, payload, call.seq)
    }
    this.#calls.push(call)
    return true
  }

  /** Moves waiting calls into the channel while there is room. */
  #flush(): void {
    while (this.#waiting.length > 0 && this.#post(this.#waiting[0] as GuestCall)) this.#waiting.shift()
  }

  /**
   * Reads the worker's messages while calls are in flight: settles calls from the result ring,
   * serves host calls for the running call, and moves waiting calls into the channel.
   */
  async #pump(): Promise<void> {
    if (this.#pumping) return
    this.#pumping = true
    try {
      while (this.#alive && this.#calls.length > 0) {
        if (this.#posting !== undefined) {
          const posting = this.#posting
          this.#posting = undefined
          await posting
        }
        this.#settleResults()
        if (!this.#alive || this.#calls.length === 0) return
        if (this.#end.hasMessage) await this.#serveExchange(this.#calls[0] as GuestCall)
        else if (!(await this.#end.waitForWorker())) return
      }
    } catch (error) {
      void this.terminate(PluginError.from(error, 'internal', this.#options.plugin))
    } finally {
      this.#pumping = false
    }
  }

  /** Settles the calls whose results the worker wrote into the result ring, oldest first. */
  #settleResults(): void {
    let settled = false
    for (let result = this.#end.peekResult(); result !== undefined; result = this.#end.peekResult()) {
      const call = this.#calls[0]
      // The running call's answer is in the exchange area, ahead of the results behind it.
      if (call !== undefined && result.seq !== call.seq && this.#end.hasMessage) break
      if (call === undefined || result.seq !== call.seq) {
        throw new PluginError('internal', `channel: a result for call ${result.seq} out of order`)
      }
      this.#calls.shift()
      const outcome = this.#outcome(call, result)
      this.#end.shiftResult()
      settled = true
      if (!this.#settle(call, outcome)) return
    }
    if (settled) this.#advanced()
  }

  /** Serves the message in the exchange area, which is about `running`: a host call, or its large result. */
  async #serveExchange(running: GuestCall): Promise<void> {
    const message = this.#end.peekWhole() ?? (await this.#end.receive())
    if (message === undefined || !this.#alive) return
    if (message.kind === MessageKind.hostCall) {
      const method = decoder.decode(message.payload.subarray(0, message.aux))
      const argsBytes = message.payload.length - message.aux
      const { maxHostCallBytes } = this.#options
      const response =
        argsBytes > maxHostCallBytes
          ? JSON.stringify({
              error: {
                code: 'resource_exhausted',
                message: `host call ${method}: ${argsBytes} bytes of arguments, more than max_host_call_bytes ${maxHostCallBytes}`,
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
      return
    }
    if (message.kind !== MessageKind.result && message.kind !== MessageKind.failure) {
      throw new PluginError('internal', `unexpected channel message ${message.kind}`)
    }
    this.#calls.shift()
    const outcome = this.#outcome(running, message)
    this.#end.markRead()
    if (this.#settle(running, outcome)) this.#advanced()
  }

  /**
   * Settles a call with its outcome; false when the outcome discards the instance (it is then
   * stopped: the worker takes no call after a discarding failure, so the others can run elsewhere).
   */
  #settle(call: GuestCall, outcome: Outcome): boolean {
    if (outcome.ok) {
      call.resolve(outcome.value)
      return true
    }
    call.reject(outcome.error)
    if (!outcome.discard) return true
    void this.terminate(outcome.error)
    return false
  }

  /** After calls settled: the next one in the channel runs from about now, and waiting ones move in. */
  #advanced(): void {
    this.#headSince = performance.now()
    this.#flush()
  }

  /** What a result or failure message means for `call`. */
  #outcome(call: GuestCall, message: ChannelMessage): Outcome {
    const { plugin } = this.#options
    if (message.kind === MessageKind.result) {
      try {
        return { ok: true, value: call.decode(message.payload, { plugin, fn: call.fn }) }
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
    const waiting = this.#waiting.indexOf(call)
    if (waiting >= 0) {
      this.#waiting.splice(waiting, 1)
      call.reject(error)
      return
    }
    const at = this.#calls.indexOf(call)
    if (at < 0) return
    if (this.#end.revoke(call.slot, call.seq)) {
      this.#calls.splice(at, 1)
      call.reject(error)
      // A waiting call too large for a slot may go out now that the channel has room.
      this.#flush()
      void this.#pump()
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
      // The result's JSON wrapped as text, no object made for it; a result JSON cannot hold (a
      // function, say) is null, as in an array.
      return `{"ok":${JSON.stringify(result ?? null) ?? 'null'}}`
    } catch (error) {
      const { code, rawMessage } = PluginError.from(error, 'internal')
      return JSON.stringify({ error: { code, message: rawMessage } })
    }
  }

  /**
   * Marks the instance stopped and settles what was in flight: calls whose results already sit in
   * the channel keep them; the running call fails with `error`; calls the worker had not taken, and
   * waiting ones, fail with {@link CallNotStarted}.
   */
  #stop(error: PluginError, crashed: boolean): void {
    if (!this.#alive) return
    this.#alive = false
    if (crashed && this.#started) this.#options.onCrash?.(error)
    const { plugin } = this.#options
    this.#settleWritten()
    this.#end.wake()
    for (const call of this.#calls.splice(0)) {
      if (this.#end.revoke(call.slot, call.seq)) call.reject(new CallNotStarted(plugin))
      else call.reject(error)
    }
    for (const call of this.#waiting.splice(0)) call.reject(new CallNotStarted(plugin))
  }

  /** Settles, oldest first, the calls whose final messages the worker has written whole. */
  #settleWritten(): void {
    for (let call = this.#calls[0]; call !== undefined; call = this.#calls[0]) {
      const result = this.#end.peekResult()
      const message = result?.seq === call.seq ? result : this.#end.peekFinal()
      if (message === undefined || message.seq !== call.seq) return
      this.#calls.shift()
      const outcome = this.#outcome(call, message)
      if (message === result) this.#end.shiftResult()
      else this.#end.markRead()
      if (outcome.ok) call.resolve(outcome.value)
      else call.reject(outcome.error)
    }
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
