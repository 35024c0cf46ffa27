import { randomBytes } from 'node:crypto'
import { realpathSync } from 'node:fs'
import { isAbsolute, relative, resolve, sep } from 'node:path'
import { parseRegistration } from '@corral/manifest'
import {
  type CallResult,
  corralHandshake,
  deadlineIn,
  errorFromStatus,
  type HostCallRequest,
  type HostCallResponse,
  hostService,
  messageEnvelopeBytes,
  parseErrorJson,
  pluginService,
  resultBatchBytes,
  unary,
} from '@corral/proto'
import {
  type CallOptions,
  type EffectiveGrant,
  type HealthStatus,
  type LoadOptions,
  type Logger,
  type Plugin,
  PluginError,
  type Registration,
  type RestartOptions,
  RestartSupervisor,
  type RuntimeState,
  type RuntimeStateChange,
  type SupervisorClock,
} from '@corral/types'
import type { Server, ServerUnaryCall, sendUnaryData } from '@grpc/grpc-js'
import { CallLimiter } from './call-limiter.js'
import { CallStream } from './call-stream.js'
import {
  type GoPluginClient,
  type ReattachConfig,
  reattachGoPlugin,
  startGoPlugin,
} from './go-plugin-client.js'
import { residentSetMiB } from './resident-memory.js'

/** How the runner watches its plugin processes (restarts: `RestartOptions` of `@corral/types`). */
export interface SupervisionOptions {
  /** Health-check every this many ms. Default 10 s. */
  healthIntervalMs: number
  /** A health check not answered SERVING within this is a failure. Default 2 s. */
  healthTimeoutMs: number
  /** This many failed checks in a row restart the plugin. Default 2. */
  healthFailures: number
  /** Check the resident set against `memory_mb` every this many ms. Default 5 s. */
  memoryIntervalMs: number
  /**
   * This many checks in a row above `memory_mb` restart the plugin: a passing spike (a large
   * argument, a garbage collection not yet run) is not a restart. Default 3.
   */
  memoryChecks: number
}

/** @internal What a {@link GrpcPlugin} shares with its runner. */
export interface GrpcPluginSettings {
  hostVersion: string
  logger: Logger
  autoMtls: boolean
  supervision: SupervisionOptions
  restart: RestartOptions
  /** The restart supervisor's clock; the real one when undefined. */
  clock: SupervisorClock | undefined
  /** Plugins that run as services of their own, by name. */
  reattach: Readonly<Record<string, ReattachTarget>>
}

/**
 * Where a plugin that runs as a service of its own listens (go-plugin's ReattachConfig: `tcp` with
 * `tls` for one on another machine), and the address of this host it reaches the broker by.
 */
export interface ReattachTarget extends ReattachConfig {
  /**
   * Over TCP: the address of this host the plugin can reach; the broker serves HostService there on
   * a fresh port with the connection's mutual TLS. Default 127.0.0.1; any other address needs `tls`.
   */
  brokerHost?: string
}

/**
 * Reads a call's result into what the call resolves with; throws the call's failure. `maxOutputBytes`
 * is the limit the call started with.
 */
type ResultDecoder = (fn: string, result: CallResult, maxOutputBytes: number) => unknown

interface CallRecord {
  /** Epoch ms: host calls made for this call must finish by then. */
  deadline: number
  chain: string[] | undefined
  /** The grant's `max_host_call_bytes` when the call started: its host calls keep it. */
  maxHostCallBytes: number
  reject(error: PluginError): void
}

let tokenCounter = 0
const tokenPrefix = randomBytes(4).toString('hex')

/**
 * A Corral plugin in a process of its own, reached over gRPC: the {@link Plugin} contract on
 * PluginService, HostService served back over the broker, and supervision (crash restart with
 * backoff, quarantine, health, memory).
 */
export class GrpcPlugin implements Plugin {
  readonly name: string
  readonly runtime = 'grpc' as const
  /** Replaced by {@link GrpcPlugin.updateGrant}: everything reads the grant from here when it needs it. */
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
  readonly #calls = new Map<string, CallRecord>()
  readonly #limiter: CallLimiter
  #watchTimers: NodeJS.Timeout[] = []
  #healthFailures = 0
  #lastError: PluginError | undefined
  #restartReason: string | undefined

  /** @internal Made by the runner's `load`; call {@link GrpcPlugin.start} next. */
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

  /**
   * @internal Starts the process (or reattaches to the service) and connects; bounded by the
   * grant's `init_timeout`.
   */
  async start(): Promise<void> {
    await this.#connect()
  }

  /** Starts or reattaches, connects and serves HostService; the client is the plugin's from then on. */
  async #connect(): Promise<GoPluginClient> {
    const client = this.#target === undefined ? await this.#launch() : await this.#reattach(this.#target)
    try {
      this.#brokerId = client.broker.nextId()
      // Refused at the transport before the host reads it whole: a host call larger than the grant allows.
      const maxReceiveBytes = this.#options.grant.limits.max_host_call_bytes + messageEnvelopeBytes
      await client.broker.serve(this.#brokerId, (server) => this.#serveHost(server), maxReceiveBytes)
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
    this.#healthFailures = 0
    void client.exited.then((exit) => this.#onExit(client, exit.code, exit.signal))
    this.#watch(client)
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
    const value: unknown = JSON.parse(Buffer.from(response.registrationJson ?? []).toString('utf8') || 'null')
    const registration = parseRegistration(value, this.#options.manifest)
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
      if (options.signal?.aborted) {
        throw new PluginError('canceled', `${fn} was canceled before it started`, { plugin: this.name })
      }
      argsJson = Buffer.from(JSON.stringify(args ?? null))
    } catch (error) {
      return Promise.reject(PluginError.from(error, 'invalid_argument', this.name))
    }
    return this.#limited(fn, argsJson, options, this.#decodeResult)
  }

  /**
   * Calls `fn` with `input` as the call's argument bytes, as they are, and resolves with its result
   * bytes as the plugin sent them (empty for none). A TypeScript SDK function declared with
   * `bytesFunction` gets `input` itself; one taking JSON parses it.
   */
  callBytes(fn: string, input: Uint8Array, options: CallOptions = {}): Promise<Uint8Array> {
    try {
      this.#running()
      if (options.signal?.aborted) {
        throw new PluginError('canceled', `${fn} was canceled before it started`, { plugin: this.name })
      }
    } catch (error) {
      return Promise.reject(PluginError.from(error, 'invalid_argument', this.name))
    }
    return this.#limited(fn, input, options, this.#resultBytes) as Promise<Uint8Array>
  }

  /** Dispatches a call within the limiter: now when a slot is free, else once one frees up. */
  #limited(fn: string, args: Uint8Array, options: CallOptions, decode: ResultDecoder): Promise<unknown> {
    // The grant's call_timeout is a ceiling: a caller may shorten a call, never lengthen it.
    const limit = this.#options.grant.limits.call_timeout
    const timeoutMs = Math.min(options.timeoutMs ?? limit, limit)
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
    const token = options.token || `${tokenPrefix}-${++tokenCounter}`
    const { max_output_bytes, max_host_call_bytes } = this.#options.grant.limits
    const record: CallRecord = {
      deadline,
      chain: options.chain,
      maxHostCallBytes: max_host_call_bytes,
      reject: () => {},
    }
    this.#calls.set(token, record)
    const request = { function: fn, argsJson, timeoutMs, token }
    // Runs exactly once per call, however it ends.
    const done = () => {
      this.#limiter.release()
      if (this.#calls.get(token) === record) this.#calls.delete(token)
    }
    if (this.#useStream) {
      if (this.#stream === undefined || !this.#stream.usable)
        this.#stream = new CallStream(client.rpc, this.name, this.#options.grant.limits.max_output_bytes)
      return this.#stream.call(
        request,
        options.signal,
        (result) => decode(fn, result, max_output_bytes),
        done,
      )
    }
    return this.#unaryCall(client, request, record, options).then(
      (result) => {
        done()
        return decode(fn, result, max_output_bytes)
      },
      (error: unknown) => {
        done()
        throw error
      },
    )
  }

  /**
   * A result's bytes, once it is known not to be an error and to be within `limit`
   * (`max_output_bytes`). Checked here for every call: the connection's own receive limit is set
   * when it opens, so it holds a grant narrowed since only here (and a widened one only from the
   * next start of the process).
   */
  #checkedResult(fn: string, result: CallResult, limit: number): Uint8Array | undefined {
    if (result.errorJson && result.errorJson.length > 0) {
      throw PluginError.fromData(parseErrorJson(result.errorJson, this.name))
    }
    const json = result.resultJson
    if (json === undefined || json === null || json.length === 0) return undefined
    if (json.length > limit) {
      throw new PluginError('resource_exhausted', `${fn} returned ${json.length} bytes, more than ${limit}`, {
        plugin: this.name,
      })
    }
    return json
  }

  /** A bytes call's result: the bytes as the plugin sent them, copied out of the received message. */
  readonly #resultBytes: ResultDecoder = (fn, result, limit) =>
    new Uint8Array(this.#checkedResult(fn, result, limit) ?? [])

  /** A JSON call's result: the parsed JSON, `null` for none. */
  readonly #decodeResult: ResultDecoder = (fn, result, limit) => {
    const json = this.#checkedResult(fn, result, limit)
    if (json === undefined) return null
    try {
      return JSON.parse(Buffer.from(json.buffer, json.byteOffset, json.byteLength).toString('utf8'))
    } catch (error) {
      throw new PluginError('plugin_error', `${fn} returned a result that is not JSON`, {
        plugin: this.name,
        cause: error,
      })
    }
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
    await this.#release(client, Math.max(250, timeoutMs - (Date.now() - started)))
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

  #launch(): Promise<GoPluginClient> {
    const { manifest, dir, grant } = this.#options
    const { logger, autoMtls } = this.#settings
    const entry = manifest.entry
    let command: string
    let args: string[]
    // Resolved at every start: a symlink swapped in after load cannot lead out of the folder.
    if ('binary' in entry) {
      command = resolveEntry(dir, entry.binary, this.name)
      args = entry.args
    } else if ('node' in entry) {
      command = process.execPath
      args = [resolveEntry(dir, entry.node, this.name), ...entry.args]
    } else {
      throw new PluginError('load_failed', 'a gRPC plugin needs a binary or node entry', {
        plugin: this.name,
      })
    }
    // The manifest asks; only what the administrator granted is passed.
    const env: Record<string, string> = {}
    for (const key of entry.env) {
      const value = process.env[key]
      if (value !== undefined && grant.env.includes(key)) env[key] = value
    }
    const unauthenticated = grant.unauthenticated_transport
    if (unauthenticated) {
      logger.log(
        'warn',
        `plugin ${this.name} runs without peer authentication (its policy's unauthenticated_transport): any local process of the host's user can call the host as this plugin and call its services`,
        { plugin: this.name },
      )
    }
    return startGoPlugin({
      command,
      args,
      cwd: dir,
      env,
      handshake: corralHandshake,
      // AutoMTLS by default; where the runner turns it off, a secret pair instead.
      autoMtls: !unauthenticated && autoMtls,
      peerSecrets: !unauthenticated && !autoMtls,
      startTimeoutMs: grant.limits.init_timeout,
      maxReceiveBytes: receiveLimit(grant.limits.max_output_bytes),
      logger,
      name: this.name,
    })
  }

  #reattach(target: ReattachTarget): Promise<GoPluginClient> {
    if (target.protocolVersion !== corralHandshake.protocolVersion) {
      return Promise.reject(
        new PluginError(
          'incompatible',
          `the service speaks protocol version ${target.protocolVersion}, not ${corralHandshake.protocolVersion}`,
          { plugin: this.name },
        ),
      )
    }
    return reattachGoPlugin({
      ...target,
      name: this.name,
      logger: this.#settings.logger,
      connectTimeoutMs: this.#options.grant.limits.init_timeout,
      maxReceiveBytes: receiveLimit(this.#options.grant.limits.max_output_bytes),
    })
  }

  /**
   * Lets go of a connected plugin: a process the runner started is stopped (`graceMs` to exit, then
   * SIGKILL); a service it reattached to is only disconnected, for its own deployment runs it.
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
    const timeoutMs = this.#options.grant.limits.init_timeout
    const token = `${tokenPrefix}-init-${++tokenCounter}`
    const record: CallRecord = {
      deadline: Date.now() + timeoutMs,
      chain: undefined,
      maxHostCallBytes: this.#options.grant.limits.max_host_call_bytes,
      reject: () => {},
    }
    this.#calls.set(token, record)
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
        { deadline: deadlineIn(timeoutMs) },
      )
    } catch (error) {
      throw errorFromStatus(error, this.name, 'init')
    } finally {
      this.#calls.delete(token)
    }
  }

  #unaryCall(
    client: GoPluginClient,
    request: { function: string; argsJson: Uint8Array; timeoutMs: number; token: string },
    record: CallRecord,
    options: CallOptions,
  ): Promise<CallResult> {
    return new Promise<CallResult>((resolvePromise, reject) => {
      const fail = (error: PluginError) => {
        options.signal?.removeEventListener('abort', onAbort)
        reject(error)
      }
      record.reject = fail
      const call = client.rpc.makeUnaryRequest(
        pluginService.call.path,
        pluginService.call.requestSerialize,
        pluginService.call.responseDeserialize,
        request,
        { deadline: deadlineIn(request.timeoutMs) },
        (error, response) => {
          options.signal?.removeEventListener('abort', onAbort)
          if (error) reject(errorFromStatus(error, this.name, request.function))
          else resolvePromise(response as CallResult)
        },
      )
      const onAbort = () => {
        call.cancel()
        fail(new PluginError('canceled', `${request.function} was canceled`, { plugin: this.name }))
      }
      options.signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  /** HostService, served to the plugin over the broker. */
  #serveHost(server: Server): void {
    server.addService(hostService, {
      call: (
        call: ServerUnaryCall<HostCallRequest, HostCallResponse>,
        callback: sendUnaryData<HostCallResponse>,
      ) => {
        void this.#hostCall(call.request).then((response) => callback(null, response))
      },
    })
  }

  async #hostCall(request: HostCallRequest): Promise<HostCallResponse> {
    const method = request.method ?? ''
    const token = request.token ?? ''
    try {
      // Every host call belongs to a call of this plugin in flight: its record carries the call's
      // plugin.call chain (depth and cycle rules) and deadline, which a call without one would escape.
      const record = this.#calls.get(token)
      if (record === undefined) {
        throw token === ''
          ? new PluginError(
              'permission_denied',
              `host call ${method}: a host call must carry its call's token`,
              {
                plugin: this.name,
              },
            )
          : new PluginError(
              'invalid_argument',
              `host call ${method}: no call of this plugin has token ${token}`,
              {
                plugin: this.name,
              },
            )
      }
      // Checked here as well as at the broker's transport: its receive limit is set when it starts.
      const bytes = request.argsJson
      const cap = record.maxHostCallBytes
      if (bytes && bytes.length > cap) {
        throw new PluginError(
          'resource_exhausted',
          `host call ${method}: ${bytes.length} bytes of arguments, more than max_host_call_bytes ${cap}`,
          { plugin: this.name },
        )
      }
      let args: unknown = null
      if (bytes && bytes.length > 0) {
        try {
          args = JSON.parse(Buffer.from(bytes).toString('utf8'))
        } catch {
          throw new PluginError('invalid_argument', `host call ${method}: the arguments are not JSON`, {
            plugin: this.name,
          })
        }
      }
      const context = {
        plugin: this.name,
        token,
        deadline: record.deadline,
        ...(record.chain === undefined ? {} : { chain: record.chain }),
      }
      const result = await withDeadline(
        () => this.#options.hostApi(method, args, context),
        record.deadline,
        method,
        this.name,
      )
      return { resultJson: Buffer.from(JSON.stringify(result ?? null)) }
    } catch (error) {
      return {
        errorJson: Buffer.from(JSON.stringify(PluginError.from(error, 'internal', this.name).toData())),
      }
    }
  }

  /** Health and memory checks of the running process. */
  #watch(client: GoPluginClient): void {
    const { supervision } = this.#settings
    const health = setInterval(() => {
      void client.health(supervision.healthTimeoutMs).then((ok) => {
        if (client !== this.#client || this.#supervisor.state !== 'running') return
        this.#healthFailures = ok ? 0 : this.#healthFailures + 1
        if (this.#healthFailures >= supervision.healthFailures) {
          this.#kill(client, `it failed ${this.#healthFailures} health checks in a row`)
        }
      })
    }, supervision.healthIntervalMs)
    // The samples above the limit in a row, MiB.
    let above: number[] = []
    const memory = setInterval(() => {
      const pid = client.pid
      // A service's memory is its own deployment's to limit.
      if (pid === undefined || this.#target !== undefined) return
      void residentSetMiB(pid).then((mib) => {
        const limit = this.#options.grant.limits.memory_mb
        if (mib === undefined || client !== this.#client || this.#supervisor.state !== 'running') return
        above = mib > limit ? [...above, mib] : []
        if (above.length < supervision.memoryChecks) return
        const seen = above.map((sample) => sample.toFixed(0)).join(', ')
        this.#kill(
          client,
          `its resident set stayed above its memory_mb of ${limit} for ${above.length} checks ${supervision.memoryIntervalMs} ms apart (${seen} MiB)`,
        )
      })
    }, supervision.memoryIntervalMs)
    health.unref()
    memory.unref()
    this.#watchTimers = [health, memory]
  }

  #unwatch(): void {
    for (const timer of this.#watchTimers) clearInterval(timer)
    this.#watchTimers = []
  }

  #kill(client: GoPluginClient, reason: string): void {
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
    for (const record of this.#calls.values()) record.reject(error)
    this.#limiter.failQueued(error)
  }

  #onExit(client: GoPluginClient, code: number | null, signal: NodeJS.Signals | null): void {
    if (client !== this.#client || this.#supervisor.stopping) return
    const reason =
      this.#restartReason ?? `the process exited ${signal === null ? `with code ${code}` : `by ${signal}`}`
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

/**
 * The largest message the host takes from a plugin's connection: a result of `max_output_bytes`, or
 * a batch of smaller ones as the SDK sends them, plus the fields around them.
 */
function receiveLimit(maxOutputBytes: number): number {
  return Math.max(maxOutputBytes, resultBatchBytes) + messageEnvelopeBytes
}

/**
 * The entry's real path (symlinks resolved), refused with `load_failed` naming the path when it is
 * missing or leads out of the plugin's (real) folder.
 */
function resolveEntry(dir: string, path: string, plugin: string): string {
  let realDir: string
  let real: string
  try {
    realDir = realpathSync(dir)
    real = realpathSync(resolve(dir, path))
  } catch {
    // Said here, plainly: otherwise the failure surfaces as the launcher's own exit code and message.
    throw new PluginError('load_failed', `no entry at ${path} (was the plugin built?)`, { plugin })
  }
  const rel = relative(realDir, real)
  // `..` as a path segment, not a name that begins with two dots.
  if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    throw new PluginError('load_failed', `entry ${path} leads outside the plugin folder (to ${real})`, {
      plugin,
    })
  }
  return real
}

/**
 * Runs `start()` (a host call) bounded by `deadline`. Nothing is started once the deadline has
 * passed, and what is started is always awaited here: a host call that lands after its call's
 * deadline must not leave the host API's promise behind, whose rejection would then go unhandled
 * and end the host process.
 */
async function withDeadline<T>(
  start: () => Promise<T>,
  deadline: number,
  method: string,
  plugin: string,
): Promise<T> {
  const left = deadline - Date.now()
  if (left <= 0) {
    throw new PluginError(
      'deadline_exceeded',
      `host call ${method}: the calling call's deadline has passed`,
      {
        plugin,
      },
    )
  }
  const work = start()
  let timer: NodeJS.Timeout | undefined
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new PluginError('deadline_exceeded', `host call ${method} outlived the calling call's deadline`, {
            plugin,
          }),
        ),
      left,
    )
  })
  try {
    return await Promise.race([work, limit])
  } finally {
    clearTimeout(timer)
  }
}
