import { parseRegistrationJson } from '@corral/manifest'
import {
  bidi,
  deadlineIn,
  errorFromStatus,
  messageEnvelopeBytes,
  parseErrorJson,
  pluginService,
  unary,
} from '@corral/proto'
import {
  type CallOptions,
  callTimeoutMs,
  type EffectiveGrant,
  type HealthStatus,
  type LoadOptions,
  PluginError,
  type Registration,
  type RestartOptions,
  RestartSupervisor,
  type RuntimeState,
  type RuntimeStateChange,
  type SupervisorClock,
  throwIfCanceled,
} from '@corral/types'
import { CallLimiter } from './call-limiter.js'
import { bytesResult, jsonResult, type ResultDecoder } from './call-result.js'
import { CallStream } from './call-stream.js'
import { type CallRecord, CallTokens } from './call-tokens.js'
import type { GoPluginClient } from './go-plugin-client.js'
import type { GrpcPlugin } from './grpc-runner.js'
import { serveHostService } from './host-service.js'
import { type LaunchSettings, launchPlugin, type ReattachTarget, reattachPlugin } from './plugin-launch.js'
import { type SupervisionOptions, watchProcess } from './process-watch.js'
import { unaryCall } from './unary-call.js'

/** The least time a plugin gets to exit after its Shutdown, however little of `shutdown_timeout` is left. */
const minExitGraceMs = 250

/** What a {@link LoadedGrpcPlugin} shares with its runner. */
export interface GrpcPluginSettings extends LaunchSettings {
  hostVersion: string
  supervision: SupervisionOptions
  restart: RestartOptions
  /** The restart supervisor's clock; the real one when undefined. */
  clock: SupervisorClock | undefined
  /** Plugins that run as services of their own, by name. */
  reattach: Readonly<Record<string, ReattachTarget>>
}

/**
 * A Corral plugin in a process of its own, reached over gRPC: the {@link Plugin} contract on
 * PluginService, HostService served back over the broker, and supervision (crash restart with
 * backoff, quarantine, health, memory). The runner makes it and calls {@link LoadedGrpcPlugin.start}.
 */
export class LoadedGrpcPlugin implements GrpcPlugin {
  readonly name: string
  readonly runtime = 'grpc' as const
  /** Replaced by {@link LoadedGrpcPlugin.updateGrant}: everything reads the grant from here when it needs it. */
  #options: LoadOptions
  readonly #settings: GrpcPluginSettings
  readonly #onStopped: () => void
  readonly #target: ReattachTarget | undefined
  #client: GoPluginClient | undefined
  #stream: CallStream | undefined
  #useStream = false
  #brokerId = 0
  readonly #supervisor: RestartSupervisor
  #config: Record<string, unknown> | undefined
  #registered = false
  readonly #calls = new CallTokens()
  readonly #limiter: CallLimiter
  #unwatch: () => void = () => {}
  #lastError: PluginError | undefined
  #restartReason: string | undefined

  constructor(options: LoadOptions, settings: GrpcPluginSettings, onStopped: () => void = () => {}) {
    this.name = options.manifest.name
    this.#options = options
    this.#settings = settings
    this.#onStopped = onStopped
    const { reattach } = settings
    this.#target = Object.hasOwn(reattach, this.name) ? reattach[this.name] : undefined
    this.#limiter = new CallLimiter(options.grant.limits, this.name)
    const target = {
      restart: () => this.#restart(),
      log: (level: 'warn' | 'error', message: string) =>
        settings.logger.log(level, `plugin ${this.name} ${message}`, { plugin: this.name }),
    }
    this.#supervisor = new RestartSupervisor(target, settings.restart, settings.clock)
  }

  /** The process's id while one runs. */
  get pid(): number | undefined {
    return this.#client?.pid
  }

  get state(): RuntimeState {
    return this.#supervisor.state
  }

  onStateChange(listener: (change: RuntimeStateChange) => void): () => void {
    return this.#supervisor.onStateChange(listener)
  }

  /** Whether this plugin is a service of its own the runner reattached to (not a process it owns). */
  get reattached(): boolean {
    return this.#target !== undefined
  }

  /** Starts the process (or reattaches to the service) and connects; bounded by the grant's `init_timeout`. */
  async start(): Promise<void> {
    await this.#connect()
  }

  /** Starts or reattaches, connects and serves HostService; the client is the plugin's from then on. */
  async #connect(): Promise<GoPluginClient> {
    const { logger } = this.#settings
    const client =
      this.#target === undefined
        ? await launchPlugin(this.#options, this.#settings)
        : await reattachPlugin(this.#target, this.#options, logger)
    try {
      this.#brokerId = client.broker.nextId()
      // Refused at the transport before the host reads it whole: a host call larger than the grant allows.
      const maxReceiveBytes = this.#options.grant.limits.max_host_call_bytes + messageEnvelopeBytes
      const { hostApi } = this.#options
      await client.broker.serve(
        this.#brokerId,
        (server) => serveHostService(server, this.name, this.#calls, hostApi),
        maxReceiveBytes,
      )
    } catch (error) {
      await this.#release(client)
      throw PluginError.from(error, 'load_failed', this.name)
    }
    if (this.#supervisor.stopping) {
      // Shut down while a restart was starting this process: it must not outlive the plugin.
      await this.#release(client)
      throw new PluginError('unavailable', 'the plugin was shut down while it started', { plugin: this.name })
    }
    this.#client = client
    this.#stream = undefined
    void client.exited.then((exit) => this.#onExit(client, exit.code, exit.signal, exit.stderr))
    this.#unwatch = watchProcess(client, this.#settings.supervision, this.#target === undefined, {
      isCurrent: (watched) => watched === this.#client && this.#supervisor.state === 'running',
      memoryLimitMiB: () => this.#options.grant.limits.memory_mb,
      failed: (watched, reason) => this.#restartFailing(watched, reason),
    })
    return client
  }

  async register(): Promise<Registration> {
    const client = this.#running()
    let response: { registrationJson?: Uint8Array | null }
    try {
      response = await this.#register(client)
    } catch (error) {
      throw errorFromStatus(error, this.name, 'register')
    }
    const registration = parseRegistrationJson(response.registrationJson, this.#options.manifest)
    this.#registered = true
    return registration
  }

  async init(config: Record<string, unknown>): Promise<void> {
    const client = this.#running()
    await this.#init(client, config)
    this.#config = config
  }

  call(fn: string, args?: unknown, options: CallOptions = {}): Promise<unknown> {
    // Not async: the hot path takes as few promise hops as it can (PERFORMANCE.md, grpc.call).
    let argsJson: Buffer
    try {
      this.#running()
      throwIfCanceled(fn, options, this.name)
      argsJson = Buffer.from(JSON.stringify(args ?? null))
    } catch (error) {
      return Promise.reject(PluginError.from(error, 'invalid_argument', this.name))
    }
    return this.#limited(fn, argsJson, options, jsonResult)
  }

  /**
   * Calls `fn` with `input` as the call's argument bytes, as they are, and resolves with its result
   * bytes as the plugin sent them (empty for none). A TypeScript SDK function declared with
   * `bytesFunction` gets `input` itself; one taking JSON parses it.
   */
  callBytes(fn: string, input: Uint8Array, options: CallOptions = {}): Promise<Uint8Array> {
    try {
      this.#running()
      throwIfCanceled(fn, options, this.name)
    } catch (error) {
      return Promise.reject(PluginError.from(error, 'invalid_argument', this.name))
    }
    return this.#limited(fn, input, options, bytesResult) as Promise<Uint8Array>
  }

  /** Dispatches a call within the limiter: now when a slot is free, else once one frees up. */
  #limited(fn: string, args: Uint8Array, options: CallOptions, decode: ResultDecoder): Promise<unknown> {
    const timeoutMs = callTimeoutMs(options, this.#options.grant.limits.call_timeout)
    const deadline = Date.now() + timeoutMs
    if (this.#limiter.tryAcquire()) return this.#dispatch(fn, args, timeoutMs, deadline, options, decode)
    // Queued: it keeps its deadline, so it runs for what is left of it.
    return this.#limiter
      .wait(fn, deadline, options.signal)
      .then(() => this.#dispatch(fn, args, Math.max(1, deadline - Date.now()), deadline, options, decode))
  }

  /** Sends a call that holds one of the limiter's slots; the slot is given back when the call settles. */
  #dispatch(
    fn: string,
    argsJson: Uint8Array,
    timeoutMs: number,
    deadline: number,
    options: CallOptions,
    decode: ResultDecoder,
  ): Promise<unknown> {
    let client: GoPluginClient
    try {
      client = this.#running()
    } catch (error) {
      this.#limiter.release()
      return Promise.reject(error)
    }
    const token = options.token || this.#calls.make()
    const { max_output_bytes, max_host_call_bytes } = this.#options.grant.limits
    const record: CallRecord = {
      deadline,
      chain: options.chain,
      maxHostCallBytes: max_host_call_bytes,
      reject: () => {},
    }
    this.#calls.add(token, record)
    const request = { function: fn, argsJson, timeoutMs, token }
    // Runs exactly once per call, however it ends.
    const done = () => {
      this.#limiter.release()
      this.#calls.delete(token, record)
    }
    if (this.#useStream) {
      if (this.#stream === undefined || !this.#stream.usable)
        this.#stream = new CallStream(bidi(client.rpc, pluginService.callStream), this.name, max_output_bytes)
      return this.#stream.call(
        request,
        options.signal,
        (result) => decode(this.name, fn, result, max_output_bytes),
        done,
      )
    }
    return unaryCall(client.rpc, request, record, options.signal, this.name).then(
      (result) => {
        done()
        return decode(this.name, fn, result, max_output_bytes)
      },
      (error: unknown) => {
        done()
        throw error
      },
    )
  }

  async health(): Promise<HealthStatus> {
    const lastError = this.#lastError?.toData()
    const withLast = (status: HealthStatus): HealthStatus =>
      lastError && !status.last_error ? { ...status, last_error: lastError } : status
    const state = this.#supervisor.state
    if (state !== 'running' || this.#client === undefined) {
      return withLast({ ready: false, message: `plugin is ${state}` })
    }
    try {
      const response = await unary(
        this.#client.rpc,
        pluginService.health,
        {},
        { deadline: deadlineIn(this.#settings.supervision.healthTimeoutMs) },
      )
      const status: HealthStatus = { ready: response.ready === true }
      if (response.message) status.message = response.message
      if (response.lastErrorJson && response.lastErrorJson.length > 0) {
        status.last_error = parseErrorJson(response.lastErrorJson, this.name)
      }
      return withLast(status)
    } catch (error) {
      return withLast({ ready: false, message: errorFromStatus(error, this.name, 'health').rawMessage })
    }
  }

  /**
   * Applies a changed grant from the next call on: `call_timeout`, `init_timeout`,
   * `shutdown_timeout`, `max_output_bytes` and `max_host_call_bytes` (checked per call; the
   * connection's receive limits, set when it opens, keep the load-time values until the process
   * restarts, so a widened byte limit holds from then), `memory_mb` (the next memory check),
   * `max_concurrent_calls` and `max_queued_calls` (the limiter, at once). Rate limits are the host
   * API's.
   */
  updateGrant(grant: EffectiveGrant): void {
    this.#options = { ...this.#options, grant }
    this.#limiter.update(grant.limits)
  }

  async shutdown(): Promise<void> {
    if (this.#supervisor.state === 'stopped') return
    this.#supervisor.stop()
    this.#unwatch()
    const client = this.#client
    this.#client = undefined
    if (client === undefined) {
      this.#supervisor.stopped()
      this.#onStopped()
      return
    }
    const timeoutMs = this.#options.grant.limits.shutdown_timeout
    const started = Date.now()
    // A service of its own keeps running for whoever else it serves: only our calls end.
    if (this.#target === undefined) {
      try {
        await unary(client.rpc, pluginService.shutdown, { timeoutMs }, { deadline: deadlineIn(timeoutMs) })
      } catch {
        // A plugin that cannot finish its work in time is stopped all the same.
      }
    }
    this.#failInFlight(new PluginError('unavailable', 'the plugin is shutting down', { plugin: this.name }))
    this.#stream?.close()
    // What is left of shutdown_timeout (at least a moment to exit) before SIGKILL.
    await this.#release(client, Math.max(minExitGraceMs, timeoutMs - (Date.now() - started)))
    this.#supervisor.stopped()
    this.#onStopped()
  }

  /**
   * Lifts a quarantine: the restart history is forgotten and the process started again,
   * initialised with the last config.
   */
  reset(): Promise<void> {
    return this.#supervisor.reset()
  }

  /**
   * Lets go of a connected plugin, with the verb its ownership calls for: a process the runner
   * started is stopped (`graceMs` to exit, then killed); a service it reattached to is only
   * disconnected, for its own deployment runs it.
   */
  #release(client: GoPluginClient, graceMs = 0): Promise<void> {
    return this.#target === undefined ? client.stop(graceMs) : client.disconnect()
  }

  #running(): GoPluginClient {
    const client = this.#client
    const state = this.#supervisor.state
    if (state !== 'running' || client === undefined) {
      throw new PluginError('unavailable', `plugin is ${state}`, { plugin: this.name })
    }
    return client
  }

  async #register(client: GoPluginClient) {
    const response = await unary(
      client.rpc,
      pluginService.register,
      { hostVersion: this.#settings.hostVersion },
      { deadline: deadlineIn(this.#options.grant.limits.init_timeout) },
    )
    this.#useStream = response.callStream === true
    return response
  }

  async #init(client: GoPluginClient, config: Record<string, unknown>): Promise<void> {
    const { init_timeout, max_host_call_bytes } = this.#options.grant.limits
    const token = this.#calls.make('init')
    const record: CallRecord = {
      deadline: Date.now() + init_timeout,
      chain: undefined,
      maxHostCallBytes: max_host_call_bytes,
      reject: () => {},
    }
    this.#calls.add(token, record)
    try {
      await unary(
        client.rpc,
        pluginService.init,
        {
          configJson: Buffer.from(JSON.stringify(config)),
          hostBrokerId: this.#brokerId,
          plugin: this.name,
          token,
        },
        { deadline: deadlineIn(init_timeout) },
      )
    } catch (error) {
      throw errorFromStatus(error, this.name, 'init')
    } finally {
      this.#calls.delete(token, record)
    }
  }

  /** The process failed its health or memory checks: let it go at once, and the exit restarts it. */
  #restartFailing(client: GoPluginClient, reason: string): void {
    this.#restartReason = reason
    this.#settings.logger.log('warn', `restarting plugin ${this.name}: ${reason}`, { plugin: this.name })
    if (this.#target === undefined) {
      void client.stop(0)
      return
    }
    // A service is not ours to kill: drop the connection and reattach.
    void client.disconnect().then(() => this.#onExit(client, null, null))
  }

  #failInFlight(error: PluginError): void {
    this.#stream?.failAll(error)
    this.#calls.failAll(error)
    this.#limiter.failQueued(error)
  }

  #onExit(client: GoPluginClient, code: number | null, signal: NodeJS.Signals | null, stderr?: string): void {
    if (client !== this.#client || this.#supervisor.stopping) return
    const reason =
      this.#restartReason ??
      `the process exited ${signal === null ? `with code ${code}` : `by ${signal}`}${stderr === undefined ? '' : `; stderr: ${stderr}`}`
    this.#restartReason = undefined
    const error = new PluginError('unavailable', `plugin process is gone: ${reason}`, { plugin: this.name })
    this.#lastError = error
    this.#unwatch()
    this.#client = undefined
    this.#failInFlight(error)
    this.#stream = undefined
    void this.#release(client)
    // Lost while a restart registers and initialises it: that restart fails, and counts, on its own.
    if (this.#supervisor.state === 'running') this.#supervisor.crashed(reason)
  }

  /** The supervisor's restart: a new process (or connection), registered and initialised as before. */
  async #restart(): Promise<void> {
    try {
      const client = await this.#connect()
      if (this.#registered) await this.#register(client)
      if (this.#config !== undefined) await this.#init(client, this.#config)
      if (client !== this.#client) {
        throw new PluginError('unavailable', 'the process was lost while it restarted', { plugin: this.name })
      }
    } catch (error) {
      // Shut down meanwhile: shutdown lets the process go, and the supervisor restarts nothing.
      if (this.#supervisor.stopping) throw error
      const failure = PluginError.from(error, 'load_failed', this.name)
      this.#lastError = failure
      const client = this.#client
      this.#client = undefined
      this.#unwatch()
      if (client !== undefined) await this.#release(client)
      // The supervisor logs the message: the plain one, the log line names the plugin already.
      throw new Error(failure.rawMessage, { cause: failure })
    }
  }
}
