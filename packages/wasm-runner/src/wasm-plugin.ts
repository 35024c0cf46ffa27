import { parseRegistration, registrationFromManifest } from '@corral/manifest'
import type {
  CallOptions,
  EffectiveGrant,
  HealthStatus,
  Manifest,
  Plugin,
  PluginErrorData,
  Registration,
} from '@corral/types'
import { PluginError } from '@corral/types'
import { extismInputFromJson, extismOutputValue } from './extism/call-data.js'
import type { LifecycleFunction } from './guest-abi.js'
import type { GuestCallOptions, OutputDecoder } from './guest-worker.js'
import { bytesOutput, CallNotStarted, type GuestWorker } from './guest-worker.js'
import type { WasmInstancePool } from './instance-pool.js'
import type { CompiledModule } from './module-cache.js'

/** What a loaded plugin is made of. */
export interface WasmPluginParts {
  manifest: Manifest
  grant: EffectiveGrant
  compiled: CompiledModule
  pool: WasmInstancePool
  /** Called once the plugin has shut down. */
  onShutdown?: () => void
}

/** The longest a `health()` probe waits for an instance, and runs. */
const healthProbeMs = 1_000

/**
 * A loaded WASM plugin: the {@link Plugin} contract over a pool of instance workers.
 * `call` is the hot path: one pool acquire, one channel exchange, one release.
 */
export class WasmPlugin implements Plugin {
  readonly runtime = 'wasm'
  readonly name: string
  readonly #manifest: Manifest
  readonly #limits: EffectiveGrant['limits']
  readonly #compiled: CompiledModule
  readonly #pool: WasmInstancePool
  readonly #onShutdown: (() => void) | undefined
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

  constructor(parts: WasmPluginParts) {
    this.name = parts.manifest.name
    this.#manifest = parts.manifest
    this.#limits = parts.grant.limits
    this.#compiled = parts.compiled
    this.#pool = parts.pool
    this.#onShutdown = parts.onShutdown
    this.#unready = new PluginError('unavailable', 'init() has not run', { plugin: this.name })
  }

  async register(): Promise<Registration> {
    if (!this.#compiled.lifecycle.has('corral_register')) return registrationFromManifest(this.#manifest)
    const value = await this.#run('corral_register', '', this.#limits.init_timeout)
    return parseRegistration(value, this.#manifest)
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
    const refused = this.#refusal(fn, options)
    if (refused !== undefined) return Promise.reject(refused)
    let input: string | undefined
    try {
      input = JSON.stringify(args ?? null)
    } catch (error) {
      // A BigInt, a cycle: the caller's mistake, reported as such (a TypeError would look like a host bug).
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
      return this.#run(fn, extismInputFromJson(input), this.#timeout(options), options, extismOutputValue)
    }
    return this.#run(fn, input, this.#timeout(options), options)
  }

  /**
   * Calls export `fn` with `input` as it is and resolves with its output as the guest wrote it (a
   * copy). Fails as {@link WasmPlugin.call} does, but never over JSON: a Corral-ABI export gets
   * `input` where it would get its JSON arguments.
   */
  callBytes(fn: string, input: Uint8Array, options: CallOptions = {}): Promise<Uint8Array> {
    const refused = this.#refusal(fn, options)
    if (refused !== undefined) return Promise.reject(refused)
    return this.#run(fn, input, this.#timeout(options), options, bytesOutput) as Promise<Uint8Array>
  }

  /** Why a call of `fn` cannot start now, if it cannot. */
  #refusal(fn: string, options: CallOptions): PluginError | undefined {
    if (!this.#compiled.callable.has(fn)) {
      return new PluginError('unimplemented', `the plugin exports no function ${fn}`, { plugin: this.name })
    }
    if (this.#unready !== undefined) return this.#unready
    if (options.signal?.aborted) {
      return new PluginError('canceled', `${fn} was canceled before it started`, { plugin: this.name })
    }
    return undefined
  }

  /** The grant's call_timeout is a ceiling: a caller may shorten a call, never lengthen it. */
  #timeout(options: CallOptions): number {
    const limit = this.#limits.call_timeout
    return Math.min(options.timeoutMs ?? limit, limit)
  }

  async health(): Promise<HealthStatus> {
    const status = (ready: boolean, message: string): HealthStatus =>
      this.#lastError === undefined ? { ready, message } : { ready, message, last_error: this.#lastError }
    if (this.#shutdown !== undefined) return status(false, 'shut down')
    if (this.#unready !== undefined) return status(false, this.#unready.rawMessage)
    if (!this.#compiled.lifecycle.has('corral_health')) return status(true, `${this.#calls} calls served`)
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
    if (this.#compiled.lifecycle.has('corral_shutdown')) {
      await Promise.all(
        this.#pool
          .takeIdle()
          .map((instance) =>
            instance
              .call('corral_shutdown', '', { deadline, context: { plugin: this.name } })
              .catch(() => undefined),
          ),
      )
    }
    await this.#pool.terminateAll()
    this.#onShutdown?.()
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
    const deadline = Date.now() + timeoutMs
    const context = { plugin: this.name, token: options.token, deadline, chain: options.chain }
    this.#inFlight++
    try {
      for (;;) {
        const instance = await this.#pool.acquire(deadline, options.signal, this.#initialized)
        try {
          if (instance.configGeneration !== this.#configGeneration) await this.#initialize(instance, context)
          if (fn === undefined) return undefined
          const callOptions: GuestCallOptions = { deadline, signal: options.signal, context }
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
  readonly #initialized = (instance: GuestWorker): boolean =>
    instance.configGeneration === this.#configGeneration

  async #initialize(instance: GuestWorker, context: { plugin: string }): Promise<void> {
    if (this.#compiled.lifecycle.has('corral_init' satisfies LifecycleFunction)) {
      await instance.call('corral_init', JSON.stringify({ config: this.#config }), {
        deadline: Date.now() + this.#limits.init_timeout,
        context,
      })
    }
    instance.configGeneration = this.#configGeneration
  }
}
