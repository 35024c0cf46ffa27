import type { Worker } from 'node:worker_threads'
import type { AbortSignalLike, HostCallContext, HostCallHandler, PluginErrorData } from '@corral/types'
import { PluginError } from '@corral/types'
import { createChannelBuffer, HostChannelEnd, MessageKind } from './channel.js'
import type { AbiName } from './guest-abi.js'
import type { SpareWorkers } from './spare-workers.js'
import type { WasiOptions } from './wasi.js'
import type { WorkerStartMessage, WorkerStatusMessage } from './worker-messages.js'

/** What every instance of one plugin is started with. */
export interface GuestWorkerOptions {
  module: WebAssembly.Module
  abi: AbiName
  plugin: string
  maxOutputBytes: number
  memoryMb: number
  wasi: WasiOptions | undefined
  hostApi: HostCallHandler
  spares: SpareWorkers
  /** How long instantiation (and `_initialize`) may take. */
  startTimeoutMs: number
}

/** One call's limits and identity. */
export interface GuestCallOptions {
  /** Epoch milliseconds; past it the worker is stopped and the call fails with `deadline_exceeded`. */
  deadline: number
  signal?: AbortSignalLike | undefined
  context: HostCallContext
}

interface PendingCall {
  resolve(value: unknown): void
  reject(error: PluginError): void
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

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
 * One guest instance in its own worker thread, seen from the host: it runs one call at a time over
 * the shared-memory channel, serves the guest's host calls asynchronously, and is stopped for real
 * (the thread is terminated) when a call runs past its deadline or is canceled.
 */
export class GuestWorker {
  readonly #worker: Worker
  readonly #end: HostChannelEnd
  readonly #options: GuestWorkerOptions
  #alive = true
  #pending: PendingCall | undefined
  /** The plugin config generation this instance ran `corral_init` with (0: none). */
  configGeneration = 0

  private constructor(worker: Worker, buffer: SharedArrayBuffer, options: GuestWorkerOptions) {
    this.#worker = worker
    this.#end = new HostChannelEnd(buffer)
    this.#options = options
    worker.on('error', (error) => this.#stop(workerExitError(options.plugin, error)))
    worker.on('exit', (code) => this.#stop(workerExitError(options.plugin, new Error(`exit code ${code}`))))
  }

  /** Starts an instance: takes a spare worker and instantiates the guest in it. */
  static start(options: GuestWorkerOptions): Promise<GuestWorker> {
    const buffer = createChannelBuffer()
    const worker = options.spares.take()
    const guest = new GuestWorker(worker, buffer, options)
    return new Promise<GuestWorker>((resolve, reject) => {
      const fail = (error: PluginError) => {
        cleanup()
        guest.kill(error)
        reject(error)
      }
      const onStatus = (status: WorkerStatusMessage) => {
        if (status.type === 'ready') {
          cleanup()
          resolve(guest)
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
        module: options.module,
        abi: options.abi,
        plugin: options.plugin,
        buffer,
        maxOutputBytes: options.maxOutputBytes,
        memoryMb: options.memoryMb,
        wasi: options.wasi,
      }
      worker.postMessage(start)
    })
  }

  /** Whether the instance can still serve (not stopped, not discarded). */
  get alive(): boolean {
    return this.#alive
  }

  /**
   * Calls `fn` with `input` (JSON text) and resolves with the parsed JSON output (`null` for none).
   * Rejects with a {@link PluginError}; after a trap, a limit, a deadline or a cancellation the
   * instance is no longer {@link GuestWorker.alive}.
   */
  call(fn: string, input: string, options: GuestCallOptions): Promise<unknown> {
    if (!this.#alive) return Promise.reject(new PluginError('unavailable', 'instance stopped'))
    if (this.#pending !== undefined) return Promise.reject(new PluginError('internal', 'instance is busy'))
    return new Promise<unknown>((resolve, reject) => {
      const { plugin } = this.#options
      const { signal, deadline } = options
      const onAbort = () => this.kill(new PluginError('canceled', `${fn} was canceled`, { plugin }))
      const timer = setTimeout(
        () => this.kill(new PluginError('deadline_exceeded', `${fn} ran past its deadline`, { plugin })),
        Math.max(0, deadline - Date.now()),
      )
      signal?.addEventListener('abort', onAbort, { once: true })
      const settle = () => {
        this.#pending = undefined
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
      }
      this.#pending = {
        resolve: (value) => {
          settle()
          resolve(value)
        },
        reject: (error) => {
          settle()
          reject(error)
        },
      }
      this.#exchange(this.#post(fn, input), options.context).then(
        (value) => this.#pending?.resolve(value),
        (error: unknown) => this.#pending?.reject(PluginError.from(error, 'internal', plugin)),
      )
    })
  }

  /**
   * Writes the call into the channel: straight into shared memory when it fits; otherwise chunked,
   * and the returned promise settles once the last chunk is across.
   */
  #post(fn: string, input: string): Promise<void> | undefined {
    const area = this.#end.area
    const name = encoder.encodeInto(fn, area)
    const body = encoder.encodeInto(input, area.subarray(name.written))
    if (body.read === input.length) {
      this.#end.postInPlace(MessageKind.call, name.written, name.written + body.written)
      return undefined
    }
    const nameBytes = encoder.encode(fn)
    const inputBytes = encoder.encode(input)
    const payload = new Uint8Array(nameBytes.length + inputBytes.length)
    payload.set(nameBytes)
    payload.set(inputBytes, nameBytes.length)
    return this.#end.send(MessageKind.call, nameBytes.length, payload)
  }

  /** Answers the worker's messages until the call's result or failure arrives. */
  async #exchange(posting: Promise<void> | undefined, context: HostCallContext): Promise<unknown> {
    const { plugin } = this.#options
    if (posting !== undefined) await posting
    for (;;) {
      const message = await this.#end.receive()
      if (message === undefined || !this.#alive) return undefined // stopped; the call was already failed
      switch (message.kind) {
        case MessageKind.result: {
          if (message.payload.length === 0) return null
          const text = decoder.decode(message.payload)
          try {
            return JSON.parse(text)
          } catch {
            throw new PluginError('plugin_error', 'the plugin returned output that is not JSON', { plugin })
          }
        }
        case MessageKind.failure: {
          const data = JSON.parse(decoder.decode(message.payload)) as PluginErrorData & { discard: boolean }
          const error = PluginError.fromData({ ...data, plugin })
          if (data.discard) this.kill(error)
          throw error
        }
        case MessageKind.hostCall: {
          const method = decoder.decode(message.payload.subarray(0, message.aux))
          const args = decoder.decode(message.payload.subarray(message.aux))
          const response = await this.#hostCall(method, args, context)
          if (!this.#alive) return undefined
          await this.#end.send(MessageKind.hostResult, 0, encoder.encode(response))
          break
        }
        default:
          throw new PluginError('internal', `unexpected channel message ${message.kind}`, { plugin })
      }
    }
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

  /** Stops the instance now: the thread is terminated and a pending call fails with `error`. */
  kill(error: PluginError): void {
    this.#stop(error)
    void this.#worker.terminate()
  }

  #stop(error: PluginError): void {
    if (!this.#alive) return
    this.#alive = false
    this.#end.wake()
    this.#pending?.reject(error)
  }

  /** Terminates the thread; a pending call fails with `unavailable`. */
  async terminate(): Promise<void> {
    this.#stop(
      new PluginError('unavailable', 'the plugin is shutting down', { plugin: this.#options.plugin }),
    )
    await this.#worker.terminate()
  }
}
