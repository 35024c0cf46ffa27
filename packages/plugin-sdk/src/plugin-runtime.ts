import {
  type CallBatch,
  type CallRequest,
  type CallResult,
  errorStatus,
  type ResultBatch,
} from '@corral/proto'
import { type HealthStatus, PluginError, type PluginErrorData } from '@corral/types'
import type {
  ServerDuplexStream,
  ServerUnaryCall,
  sendUnaryData,
  UntypedServiceImplementation,
} from '@grpc/grpc-js'
import { type CallRunner, serveCallStream } from './call-stream.js'
import type { PluginDefinition } from './define-plugin.js'
import { asPluginError, callFunction, decodeJson } from './function-call.js'
import type { HostConnection } from './host-client.js'
import { RunningCall } from './running-call.js'

type InitRequest = { configJson?: Uint8Array; hostBrokerId?: number; plugin?: string; token?: string }

/**
 * Runs the plugin's own code behind Corral's `PluginService`: register, init, call (unary and the
 * call stream), health, and shutdown (the plugin finishes its pending work; the process keeps
 * serving until it is stopped). A failure of the plugin's code is the RPC's error, and the last
 * one is what health reports.
 */
export class PluginRuntime implements CallRunner {
  readonly #plugin: PluginDefinition
  readonly #host: HostConnection
  #initialized = false
  #lastError: PluginErrorData | undefined

  constructor(plugin: PluginDefinition, host: HostConnection) {
    this.#plugin = plugin
    this.#host = host
  }

  /** The `PluginService` handlers, for `server.addService(pluginService, …)`. */
  handlers(): UntypedServiceImplementation {
    return {
      register: (_call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<object>) => {
        this.#unary(callback, async () => {
          const { register } = this.#plugin
          const registration = (typeof register === 'function' ? await register() : register) ?? {}
          return { registrationJson: Buffer.from(JSON.stringify(registration)), callStream: true }
        })
      },
      init: (call: ServerUnaryCall<InitRequest, unknown>, callback: sendUnaryData<object>) => {
        this.#unary(callback, () => this.#init(call.request))
      },
      call: (call: ServerUnaryCall<CallRequest, CallResult>, callback: sendUnaryData<CallResult>) => {
        const running = this.start(call.request)
        call.on('cancelled', () => running.abort(new PluginError('canceled', 'the host canceled the call')))
        void Promise.resolve(this.run(call.request, running)).then((result) => callback(null, result))
      },
      callStream: (stream: ServerDuplexStream<CallBatch, ResultBatch>) => serveCallStream(stream, this),
      health: (_call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<object>) => {
        this.#unary(callback, () => this.#health())
      },
      shutdown: (call: ServerUnaryCall<{ timeoutMs?: number }, unknown>, callback: sendUnaryData<object>) => {
        this.#unary(callback, () => this.#shutdown(call.request.timeoutMs ?? 0))
      },
    }
  }

  /** A call's context: its token, its deadline (from the request's timeout) and its host API. */
  start(request: CallRequest): RunningCall {
    const timeoutMs = request.timeoutMs ?? 0
    return new RunningCall(
      this.#host,
      request.token ?? '',
      timeoutMs > 0 ? Date.now() + timeoutMs : undefined,
    )
  }

  /** Runs a call of one of the plugin's functions; never rejects (see `callFunction`). */
  run(request: CallRequest, running: RunningCall): CallResult | Promise<CallResult> {
    return callFunction(this.#plugin.functions, request, running, this.#recordFailure)
  }

  /** Keeps a call's failure for health to report (one function for every call, not one per call). */
  readonly #recordFailure = (failure: PluginError): void => {
    this.#lastError = failure.toData()
  }

  async #init(request: InitRequest): Promise<object> {
    this.#host.setBrokerId(request.hostBrokerId ?? 0)
    const config = decodeJson(request.configJson) ?? {}
    await this.#plugin.init?.(config as Record<string, unknown>, {
      plugin: request.plugin ?? '',
      host: this.#host.bind(request.token ?? '', undefined),
    })
    this.#initialized = true
    return {}
  }

  async #health(): Promise<object> {
    const health: HealthStatus = this.#plugin.health
      ? await this.#plugin.health()
      : { ready: this.#initialized, ...(this.#initialized ? {} : { message: 'not initialized' }) }
    const lastError = health.last_error ?? this.#lastError
    return {
      ready: health.ready,
      message: health.message ?? '',
      lastErrorJson: lastError === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(lastError)),
    }
  }

  /** The plugin's `shutdown`, waited for at most `timeoutMs` (0: no limit). */
  async #shutdown(timeoutMs: number): Promise<object> {
    const work = Promise.resolve(this.#plugin.shutdown?.())
    if (timeoutMs <= 0) {
      await work
      return {}
    }
    let timer: NodeJS.Timeout | undefined
    const limit = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs)
    })
    await Promise.race([work, limit])
    clearTimeout(timer)
    return {}
  }

  #unary<T>(callback: sendUnaryData<T>, work: () => Promise<T>): void {
    work().then(
      (value) => callback(null, value),
      (error: unknown) => {
        const failure = asPluginError(error)
        this.#lastError = failure.toData()
        callback(errorStatus(failure))
      },
    )
  }
}
