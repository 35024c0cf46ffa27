import { parseRegistrationJson, registrationFromManifest } from '@corral/manifest'
import type {
  CallOptions,
  EffectiveGrant,
  HealthStatus,
  Logger,
  Manifest,
  Plugin,
  PluginErrorData,
  Registration,
  ResourceLimits,
  RestartOptions,
  RuntimeState,
  RuntimeStateChange,
  SupervisorClock,
  WasmPoolOptions,
} from '@corral/types'
import { callTimeoutMs, PluginError, RestartSupervisor, throwIfCanceled } from '@corral/types'
import { extismInputFromJson, extismOutputValue } from '../abi/extism/call-data.js'
import type { LifecycleFunction } from '../abi/guest-abi.js'
import { InstancePool, type PoolGroup, type PoolLimits } from './instance-pool.js'
import type { CompiledModule } from './module-cache.js'
import type { InstanceCallOptions, InstanceSettings, OutputDecoder } from './worker-handle.js'
import { bytesOutput, CallNotStarted, WorkerHandle } from './worker-handle.js'

/** What a loaded plugin is made of. */
export interface WasmPluginParts {
  manifest: Manifest
  grant: EffectiveGrant
  compiled: CompiledModule
  /**
   * The settings instances start with under `grant`: its module compiled with the grant's memory
   * cap, its output and host-call limits, its WASI preopens.
   */
  instanceSettings(grant: EffectiveGrant): Promise<InstanceSettings>
  restart: RestartOptions
  clock?: SupervisorClock | undefined
  logger: Logger
  /** The runner's pools, which bound how far this plugin's pool grows past its first instance. */
  group?: PoolGroup | undefined
  /** Called once the plugin has shut down. */
  onShutdown?: () => void
}

/** The longest a `health()` probe waits for an instance, and runs. */
const healthProbeMs = 1_000

/** The pool a manifest without `wasm.pool` gets. */
const defaultPool: WasmPoolOptions = { max_instances: 4, wait_timeout: 5_000 }

/**
 * How long an instance may stay idle before it is stopped, unless the manifest says
 * (`wasm.pool.idle_timeout`). An idle instance's worker thread holds ~15 MB resident; starting one
 * again costs an instantiation from the compiled module and `corral_init` (the runner keeps a
 * started worker spare), a few milliseconds: worth it for a plugin called less than twice a minute.
 */
export const defaultIdleTimeoutMs = 30_000

/** The pool's limits: the manifest asks, the grant caps. */
function poolLimits(manifest: Manifest, limits: ResourceLimits): PoolLimits {
  const { max_instances, wait_timeout, idle_timeout } = manifest.wasm?.pool ?? defaultPool
  return {
    // The administrator's max_instances caps the manifest's, so that the plugin's guest memory is
    // at most max_instances × memory_mb, both the administrator's.
    maxInstances: Math.min(max_instances, limits.max_instances),
    maxConcurrentCalls: limits.max_concurrent_calls,
    maxQueuedCalls: limits.max_queued_calls,
    waitTimeoutMs: wait_timeout,
    idleTimeoutMs: idle_timeout ?? defaultIdleTimeoutMs,
  }
}

/** Whether instances started under `next` differ from those started under `previous`. */
function instanceSettingsDiffer(previous: EffectiveGrant, next: EffectiveGrant): boolean {
  const keys = [
    'memory_mb',
    'max_output_bytes',
    'max_host_call_bytes',
    'max_open_files',
    'init_timeout',
  ] as const
  return (
    keys.some((key) => previous.limits[key] !== next.limits[key]) ||
    JSON.stringify(previous.permissions) !== JSON.stringify(next.permissions)
  )
}

/**
 * A loaded WASM plugin: the {@link Plugin} contract over a pool of instances, each in its own worker.
 * `call` is the hot path: one pool acquire, one channel exchange, one release.
 *
 * Supervision: an instance lost to a crash (a trap, a dead worker, a call stopped at its deadline)
 * is reported to the plugin's {@link RestartSupervisor}. While it is `restarting`, no instance
 * starts until the backoff has passed; callers wait for one within their deadline, or fail with
 * `unavailable`. Once `quarantined`, every call fails with `unavailable` at once until `reset()`.
 */
export class WasmPlugin implements Plugin {
  readonly runtime = 'wasm'
  readonly name: string
  readonly #manifest: Manifest
  #grant: EffectiveGrant
  readonly #compiled: CompiledModule
  readonly #pool: InstancePool<WorkerHandle>
  readonly #supervisor: RestartSupervisor
  readonly #instanceSettings: (grant: EffectiveGrant) => Promise<InstanceSettings>
  /** The settings of instances started from now on. */
  #settings: Promise<InstanceSettings>
  readonly #onShutdown: (() => void) | undefined
  /** Why calls fail at once (the plugin is quarantined), if they do. */
  #quarantine: PluginError | undefined
  #config: Record<string, unknown> = {}
  /** Bumped by every init(); an instance whose generation differs runs corral_init before it serves. */
  #configGeneration = 0
  /**
   * Why the plugin cannot take calls (no init() yet, or the last one failed), or undefined once an
   * init() has started: until an init() succeeds, calls fail fast and never re-run a failing init.
   */
  #unready: PluginError | undefined
  #inFlight = 0
  #drained: (() => void) | undefined
  #shutdown: Promise<void> | undefined
  #lastError: PluginErrorData | undefined
  #calls = 0

  /** The first instance, started by the constructor before anything else (see {@link WasmPlugin.load}). */
  readonly #firstInstance: Promise<WorkerHandle>

  private constructor(parts: WasmPluginParts, settings: InstanceSettings) {
    // First, so that the rest runs while the worker instantiates (`#crashed`, a field, is already set).
    this.#firstInstance = WorkerHandle.start({ ...settings, onCrash: this.#crashed })
    this.name = parts.manifest.name
    this.#manifest = parts.manifest
    this.#grant = parts.grant
    this.#compiled = parts.compiled
    this.#instanceSettings = parts.instanceSettings
    this.#settings = Promise.resolve(settings)
    this.#onShutdown = parts.onShutdown
    this.#unready = new PluginError('unavailable', 'init() has not run', { plugin: this.name })
    this.#pool = new InstancePool({
      plugin: this.name,
      ...poolLimits(parts.manifest, parts.grant.limits),
      group: parts.group,
      create: () => this.#startInstance(),
      stopIdle: async (instance) => {
        await this.#runShutdown(instance, Date.now() + this.#limits.shutdown_timeout)
        await instance.terminate()
      },
    })
    const { logger } = parts
    this.#supervisor = new RestartSupervisor(
      {
        restart: async () => this.#pool.resume(await this.#startInstance()),
        log: (level, message) => logger.log(level, message, { plugin: this.name }),
      },
      parts.restart,
      parts.clock,
    )
    this.#supervisor.onStateChange((change) => this.#supervise(change))
  }

  /**
   * Loads a plugin: starts its first instance. Its worker is sent the module first, so that the
   * plugin's own set-up here runs while the worker instantiates (bench row `wasm.load.cached`).
   */
  static async load(parts: WasmPluginParts): Promise<WasmPlugin> {
    const plugin = new WasmPlugin(parts, await parts.instanceSettings(parts.grant))
    plugin.#pool.add(await plugin.#firstInstance)
    return plugin
  }

  /** The limits calls start with now. */
  get #limits(): ResourceLimits {
    return this.#grant.limits
  }

  #prepare(grant: EffectiveGrant): Promise<InstanceSettings> {
    const settings = this.#instanceSettings(grant)
    // A module that fails to compile under the new cap fails the instances that need it, not the host.
    settings.catch(() => undefined)
    return settings
  }

  async #startInstance(): Promise<WorkerHandle> {
    const settings = await this.#settings
    return WorkerHandle.start({ ...settings, onCrash: this.#crashed })
  }

  readonly #crashed = (error: PluginError): void => {
    this.#supervisor.crashed(`an instance was lost: ${error.code}: ${error.rawMessage}`)
  }

  /** Holds the pool while the plugin restarts; empties it when the plugin is quarantined. */
  #supervise(change: RuntimeStateChange): void {
    if (change.to === 'restarting') {
      this.#quarantine = undefined
      this.#pool.pause(
        new PluginError('unavailable', `the plugin is restarting: ${change.reason}`, { plugin: this.name }),
      )
    } else if (change.to === 'quarantined') {
      this.#quarantine = new PluginError('unavailable', `the plugin is quarantined: ${change.reason}`, {
        plugin: this.name,
      })
      this.#pool.pause(this.#quarantine)
      void this.#pool.terminateAll(this.#quarantine)
    }
  }

  get state(): RuntimeState {
    return this.#supervisor.state
  }

  onStateChange(listener: (change: RuntimeStateChange) => void): () => void {
    return this.#supervisor.onStateChange(listener)
  }

  /** Lifts a quarantine: the restart history is forgotten and an instance starts at once. */
  reset(): Promise<void> {
    return this.#supervisor.reset()
  }

  /**
   * Takes a changed grant: timeouts from the next call on; the pool's size and concurrency at once
   * (idle instances beyond a lowered `max_instances` stop); memory, output, host-call and open-file
   * limits and `fs` permissions for instances started from now on, and the instances running now
   * are replaced as soon as they are idle, so that those hold from the next call on too.
   */
  updateGrant(grant: EffectiveGrant): void {
    const previous = this.#grant
    this.#grant = grant
    this.#pool.resize(poolLimits(this.#manifest, grant.limits))
    if (instanceSettingsDiffer(previous, grant)) {
      this.#settings = this.#prepare(grant)
      this.#pool.retire()
    }
  }

  async register(): Promise<Registration> {
    if (!this.#compiled.lifecycle.has('corral_register')) return registrationFromManifest(this.#manifest)
    const json = await this.#run('corral_register', '', this.#limits.init_timeout, {}, bytesOutput)
    return parseRegistrationJson(json as Uint8Array, this.#manifest)
  }

  /**
   * Runs `corral_init` with `config` on one instance now (the others before their next call). When
   * it fails, the plugin is not ready: calls fail with `unavailable` until an init() succeeds.
   */
  async init(config: Record<string, unknown>): Promise<void> {
    this.#config = config
    const generation = ++this.#configGeneration
    this.#unready = undefined
    try {
      await this.#run(undefined, '', this.#limits.init_timeout)
    } catch (error) {
      // Only the latest init() decides: an earlier one failing late does not undo a newer one.
      if (generation === this.#configGeneration) {
        const failure = PluginError.from(error, 'internal', this.name)
        this.#unready = new PluginError('unavailable', `init() failed: ${failure.rawMessage}`, {
          plugin: this.name,
          cause: failure,
        })
      }
      throw error
    }
  }

  /**
   * Calls export `fn` with `args` as JSON. Fails with `unimplemented` for a function the module
   * does not export, `deadline_exceeded` past `timeoutMs` (the instance is stopped and replaced),
   * `canceled` when `signal` aborts, `resource_exhausted` when no instance frees up in time,
   * `unavailable` before a successful init(), `invalid_argument` for `args` JSON cannot hold.
   */
  call(fn: string, args?: unknown, options: CallOptions = {}): Promise<unknown> {
    let input: string | undefined
    try {
      this.#checkStart(fn, options)
      input = JSON.stringify(args ?? null)
    } catch (error) {
      // A refusal as it is; a BigInt or a cycle in `args` is the caller's mistake, reported as such
      // (a TypeError would look like a host bug).
      return Promise.reject(PluginError.from(error, 'invalid_argument', this.name))
    }
    if (input === undefined) {
      return Promise.reject(
        new PluginError('invalid_argument', `the arguments of ${fn} are not JSON (${typeof args})`, {
          plugin: this.name,
        }),
      )
    }
    // An Extism export reads and writes bytes: a JSON string reaches it as its bare text (call-data.ts).
    if (this.#compiled.abi === 'extism') {
      return this.#run(
        fn,
        extismInputFromJson(input),
        callTimeoutMs(options, this.#limits.call_timeout),
        options,
        extismOutputValue,
      )
    }
    return this.#run(fn, input, callTimeoutMs(options, this.#limits.call_timeout), options)
  }

  /**
   * Calls export `fn` with `input` as it is and resolves with its output as the guest wrote it (a
   * copy). Fails as {@link WasmPlugin.call} does, but never over JSON: a Corral-ABI export gets
   * `input` where it would get its JSON arguments.
   */
  callBytes(fn: string, input: Uint8Array, options: CallOptions = {}): Promise<Uint8Array> {
    try {
      this.#checkStart(fn, options)
    } catch (error) {
      return Promise.reject(error)
    }
    return this.#run(
      fn,
      input,
      callTimeoutMs(options, this.#limits.call_timeout),
      options,
      bytesOutput,
    ) as Promise<Uint8Array>
  }

  /** Throws why a call of `fn` cannot start now, if it cannot. */
  #checkStart(fn: string, options: CallOptions): void {
    if (!this.#compiled.callable.has(fn)) {
      throw new PluginError('unimplemented', `the plugin exports no function ${fn}`, { plugin: this.name })
    }
    if (this.#quarantine !== undefined) throw this.#quarantine
    if (this.#unready !== undefined) throw this.#unready
    throwIfCanceled(fn, options, this.name)
  }

  async health(): Promise<HealthStatus> {
    const status = (ready: boolean, message: string): HealthStatus =>
      this.#lastError === undefined ? { ready, message } : { ready, message, last_error: this.#lastError }
    if (this.#shutdown !== undefined) return status(false, 'shut down')
    if (this.#quarantine !== undefined) return status(false, this.#quarantine.rawMessage)
    if (this.#unready !== undefined) return status(false, this.#unready.rawMessage)
    if (!this.#compiled.lifecycle.has('corral_health')) return status(true, `${this.#calls} calls served`)
    // A probe does not wake an idle plugin (its instances stopped after their idle time).
    if (this.#pool.size === 0 && this.state === 'running') {
      return status(true, `${this.#calls} calls served; idle, no instance running`)
    }
    try {
      const reported = (await this.#run('corral_health', '', healthProbeMs)) as {
        ready?: unknown
        message?: unknown
      }
      return status(reported?.ready === true, typeof reported?.message === 'string' ? reported.message : '')
    } catch (error) {
      const failure = PluginError.from(error)
      if (failure.code === 'resource_exhausted' || failure.code === 'deadline_exceeded') {
        return status(true, 'every instance is busy')
      }
      return status(false, failure.rawMessage)
    }
  }

  shutdown(): Promise<void> {
    this.#shutdown ??= this.#stop()
    return this.#shutdown
  }

  async #stop(): Promise<void> {
    const deadline = Date.now() + this.#limits.shutdown_timeout
    this.#supervisor.stop()
    this.#pool.close()
    if (this.#inFlight > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.#limits.shutdown_timeout)
        this.#drained = () => {
          clearTimeout(timer)
          resolve()
        }
      })
    }
    await Promise.all(this.#pool.takeIdle().map((instance) => this.#runShutdown(instance, deadline)))
    await this.#pool.terminateAll()
    this.#supervisor.stopped()
    this.#onShutdown?.()
  }

  /** Runs the guest's `corral_shutdown` on an instance about to be dropped, if it exports one. */
  async #runShutdown(instance: WorkerHandle, deadline: number): Promise<void> {
    if (this.#compiled.lifecycle.has('corral_shutdown')) {
      await instance
        .call('corral_shutdown', '', { deadline, context: { plugin: this.name } })
        .catch(() => undefined)
    }
  }

  /**
   * Runs `fn` on a free instance, after `corral_init` if that instance has not had the current
   * config. `fn` undefined runs only the init.
   */
  async #run(
    fn: string | undefined,
    input: string | Uint8Array,
    timeoutMs: number,
    options: CallOptions = {},
    decode?: OutputDecoder,
  ): Promise<unknown> {
    if (this.#shutdown !== undefined)
      throw new PluginError('unavailable', 'the plugin is shut down', { plugin: this.name })
    if (this.#quarantine !== undefined) throw this.#quarantine
    const deadline = Date.now() + timeoutMs
    const context = { plugin: this.name, token: options.token, deadline, chain: options.chain }
    this.#inFlight++
    try {
      for (;;) {
        const instance = await this.#pool.acquire(deadline, options.signal, this.#initialized)
        try {
          if (instance.configGeneration !== this.#configGeneration) await this.#initialize(instance, context)
          if (fn === undefined) return undefined
          const callOptions: InstanceCallOptions = {
            deadline,
            signal: options.signal,
            context,
            concurrent: this.#inFlight > 1,
          }
          if (decode !== undefined) callOptions.decode = decode
          const result = await instance.call(fn, input, callOptions)
          this.#calls++
          return result
        } catch (error) {
          if (!(error instanceof CallNotStarted)) throw error
          // Queued behind a call that stopped its instance, it never ran: run it on another one,
          // or, its time being up, fail as any call past its deadline does.
          if (Date.now() < deadline) continue
          throw new PluginError(
            'deadline_exceeded',
            `${fn ?? 'corral_init'} reached its deadline before it could start`,
            {
              plugin: this.name,
            },
          )
        } finally {
          this.#pool.release(instance)
        }
      }
    } catch (error) {
      const failure = PluginError.from(error, 'internal', this.name)
      if (!failure.code.includes(':')) this.#lastError = failure.toData()
      throw failure
    } finally {
      if (--this.#inFlight === 0) this.#drained?.()
    }
  }

  /** Only behind a call on an instance initialised with the current config may a call be queued. */
  readonly #initialized = (instance: WorkerHandle): boolean =>
    instance.configGeneration === this.#configGeneration

  async #initialize(instance: WorkerHandle, context: { plugin: string }): Promise<void> {
    if (this.#compiled.lifecycle.has('corral_init' satisfies LifecycleFunction)) {
      await instance.call('corral_init', JSON.stringify({ config: this.#config }), {
        deadline: Date.now() + this.#limits.init_timeout,
        context,
      })
    }
    instance.configGeneration = this.#configGeneration
  }
}
