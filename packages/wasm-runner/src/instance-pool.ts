import type { AbortSignalLike } from '@corral/types'
import { PluginError } from '@corral/types'
import type { GuestWorker } from './guest-worker.js'

/** The pool's size and patience; {@link WasmInstancePool.resize} changes them live. */
export interface PoolLimits {
  /** At most this many instances. */
  maxInstances: number
  /** At most this many calls hold an instance at once (running, or queued behind a running one). */
  maxConcurrentCalls: number
  /** At most this many callers wait for an instance; one more fails at once with `resource_exhausted`. */
  maxQueuedCalls: number
  /** How long a caller waits for a free instance before `resource_exhausted`. */
  waitTimeoutMs: number
}

/** The pool's limits, and how it starts an instance. */
export interface InstancePoolOptions extends PoolLimits {
  plugin: string
  /** Starts one more instance. */
  create(): Promise<GuestWorker>
}

interface Waiter {
  /** Whether the caller's call may be queued behind a running one on this instance. */
  mayQueueOn(instance: GuestWorker): boolean
  resolve(instance: GuestWorker): void
  reject(error: PluginError): void
  timer: ReturnType<typeof setTimeout>
}

/**
 * The instances of one plugin: up to `maxInstances`, each running one call at a time. Instances
 * start on demand; one that was stopped (timeout, trap, cancellation) is dropped, and the next
 * caller who finds no free instance starts its replacement. When every instance is busy, a call
 * may be queued behind one that has just started (pipelining, see `channel.ts`); otherwise the
 * caller waits at most `waitTimeoutMs` (or until its own deadline), then fails. Calls holding an
 * instance are at most `maxConcurrentCalls`, callers waiting at most `maxQueuedCalls`: a burst at
 * one plugin is refused here, at once, and never piles up on the host.
 */
export class WasmInstancePool {
  readonly #options: InstancePoolOptions
  /** Instances started before the last {@link WasmInstancePool.retire}: stopped when released. */
  readonly #retired = new Set<GuestWorker>()
  /** Why no instance may start now (the plugin is restarting), if so. */
  #paused: PluginError | undefined
  readonly #idle: GuestWorker[] = []
  readonly #all = new Set<GuestWorker>()
  readonly #waiters: Waiter[] = []
  /** Calls handed out per live instance: 1 running, 2 with one queued behind it. */
  readonly #reserved = new Map<GuestWorker, number>()
  /** Instances being started. */
  #starting = 0
  /** Calls handed an instance (or an instance being started for them) and not yet released. */
  #inFlight = 0
  #closed = false

  constructor(options: InstancePoolOptions) {
    this.#options = { ...options }
  }

  /** Live instances, busy or idle. */
  get size(): number {
    return this.#all.size
  }

  /** Adds an instance started elsewhere (the one a plugin is loaded with). */
  add(instance: GuestWorker): void {
    this.#all.add(instance)
    this.#reserved.set(instance, 1)
    this.#inFlight++
    this.release(instance)
  }

  /** An idle live instance, reserved for one call. */
  #idleInstance(): GuestWorker | undefined {
    for (let instance = this.#idle.pop(); instance !== undefined; instance = this.#idle.pop()) {
      if (instance.alive) {
        this.#reserved.set(instance, 1)
        return instance
      }
      this.#forget(instance)
    }
    return undefined
  }

  /** A busy instance that can take a call queued behind its running one, reserved for it. */
  #queueableInstance(mayQueueOn: (instance: GuestWorker) => boolean): GuestWorker | undefined {
    for (const instance of this.#all) {
      if (this.#reserved.get(instance) === 1 && instance.canQueue && mayQueueOn(instance)) {
        this.#reserved.set(instance, 2)
        return instance
      }
    }
    return undefined
  }

  #forget(instance: GuestWorker): void {
    this.#all.delete(instance)
    this.#reserved.delete(instance)
    this.#retired.delete(instance)
  }

  /**
   * An instance for one call, reserved for it, if the concurrency limit leaves room: an idle one,
   * one started now, or one whose running call the caller's may queue behind.
   */
  #grant(mayQueueOn: (instance: GuestWorker) => boolean): GuestWorker | Promise<GuestWorker> | undefined {
    if (this.#inFlight >= this.#options.maxConcurrentCalls) return undefined
    let instance = this.#idleInstance()
    if (instance === undefined) {
      if (this.#paused === undefined && this.#all.size + this.#starting < this.#options.maxInstances) {
        return this.#start()
      }
      instance = this.#queueableInstance(mayQueueOn)
      if (instance === undefined) return undefined
    }
    this.#inFlight++
    return instance
  }

  /**
   * A free instance, started if there is room, one whose running call the caller's call may queue
   * behind (`mayQueueOn` says where it may), or the next one released. A caller who waits gives up
   * at `waitTimeoutMs`, at its deadline, or when its `signal` aborts; when `maxQueuedCalls` callers
   * already wait, it fails at once with `resource_exhausted`.
   */
  acquire(
    deadline: number,
    signal?: AbortSignalLike,
    mayQueueOn: (instance: GuestWorker) => boolean = () => true,
  ): Promise<GuestWorker> {
    if (this.#closed) return Promise.reject(this.#unavailable())
    const granted = this.#grant(mayQueueOn)
    if (granted !== undefined) return Promise.resolve(granted)
    const { maxQueuedCalls, plugin } = this.#options
    if (this.#waiters.length >= maxQueuedCalls) {
      return Promise.reject(
        new PluginError(
          'resource_exhausted',
          `the plugin's call queue is full (max_queued_calls ${maxQueuedCalls})`,
          { plugin },
        ),
      )
    }
    return new Promise<GuestWorker>((resolve, reject) => {
      const left = deadline - Date.now()
      const waitMs = Math.max(0, Math.min(this.#options.waitTimeoutMs, left))
      const byDeadline = left < this.#options.waitTimeoutMs
      const giveUp = (error: PluginError) => {
        const at = this.#waiters.indexOf(waiter)
        if (at < 0) return
        this.#waiters.splice(at, 1)
        // Waiting in vain for a restart: the restart's reason, not a full pool, is why.
        waiter.reject(this.#paused ?? error)
      }
      const onAbort = () =>
        giveUp(
          new PluginError('canceled', 'canceled while waiting for a free instance', {
            plugin: this.#options.plugin,
          }),
        )
      const waiter: Waiter = {
        mayQueueOn,
        resolve: (instance) => {
          clearTimeout(waiter.timer)
          signal?.removeEventListener('abort', onAbort)
          resolve(instance)
        },
        reject: (error) => {
          clearTimeout(waiter.timer)
          signal?.removeEventListener('abort', onAbort)
          reject(error)
        },
        timer: setTimeout(() => {
          giveUp(
            byDeadline
              ? new PluginError(
                  'deadline_exceeded',
                  'the deadline passed while waiting for a free instance',
                  {
                    plugin: this.#options.plugin,
                  },
                )
              : new PluginError(
                  'resource_exhausted',
                  `no instance freed up in ${this.#options.waitTimeoutMs} ms (max_instances ${this.#options.maxInstances}, max_concurrent_calls ${this.#options.maxConcurrentCalls})`,
                  { plugin: this.#options.plugin },
                ),
          )
        }, waitMs),
      }
      this.#waiters.push(waiter)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  /** Starts an instance for one call: it counts as in flight from now, and stops counting if the start fails. */
  async #start(): Promise<GuestWorker> {
    this.#starting++
    this.#inFlight++
    try {
      const instance = await this.#options.create()
      this.#all.add(instance)
      this.#reserved.set(instance, 1)
      if (this.#closed) {
        void instance.terminate()
        throw this.#unavailable()
      }
      return instance
    } catch (error) {
      this.#inFlight--
      throw error
    } finally {
      this.#starting--
    }
  }

  /**
   * Gives back one call's reservation. An instance left idle is kept; a stopped one is dropped,
   * which makes room for a replacement. Then waiting callers get what the release freed.
   */
  release(instance: GuestWorker): void {
    this.#inFlight--
    if (this.#all.has(instance)) {
      if (!instance.alive || this.#closed) {
        this.#forget(instance)
        if (this.#closed) void instance.terminate()
      } else {
        const left = (this.#reserved.get(instance) ?? 1) - 1
        this.#reserved.set(instance, left)
        // Idle once no call queued behind the released one is left on it.
        if (left === 0) {
          if (this.#retired.has(instance) || this.#surplus()) this.#stopIdle(instance)
          else this.#idle.push(instance)
        }
      }
    }
    if (this.#waiters.length > 0) this.#serveWaiters()
  }

  /** Hands waiting callers, first come first served, what the concurrency limit and the instances allow. */
  #serveWaiters(): void {
    for (let waiter = this.#waiters[0]; waiter !== undefined && !this.#closed; waiter = this.#waiters[0]) {
      const granted = this.#grant(waiter.mayQueueOn)
      if (granted === undefined) return
      this.#waiters.shift()
      if (granted instanceof Promise) {
        const { resolve, reject } = waiter
        granted.then(resolve, (error: unknown) => reject(PluginError.from(error)))
      } else {
        waiter.resolve(granted)
      }
    }
  }

  /** Whether there are more instances than `maxInstances` now allows (it was lowered). */
  #surplus(): boolean {
    return this.#all.size > this.#options.maxInstances
  }

  /**
   * Takes new limits from now on. Idle instances beyond a lowered `maxInstances` stop now, busy
   * ones when released; room that was added serves waiting callers.
   */
  resize(limits: PoolLimits): void {
    const { maxInstances, maxConcurrentCalls, maxQueuedCalls, waitTimeoutMs } = limits
    Object.assign(this.#options, { maxInstances, maxConcurrentCalls, maxQueuedCalls, waitTimeoutMs })
    while (this.#surplus() && this.#idle.length > 0) this.#stopIdle(this.#idle.pop() as GuestWorker)
    if (this.#waiters.length > 0) this.#serveWaiters()
  }

  /**
   * Instances started from now on get new settings: the idle ones stop now, the busy ones when
   * their calls are done.
   */
  retire(): void {
    for (const instance of this.#idle.splice(0)) this.#stopIdle(instance)
    for (const instance of this.#all) this.#retired.add(instance)
  }

  #stopIdle(instance: GuestWorker): void {
    this.#forget(instance)
    void instance.terminate()
  }

  /**
   * No instance starts until {@link WasmInstancePool.resume}: callers who find none free wait,
   * and fail with `reason` when their wait ends first.
   */
  pause(reason: PluginError): void {
    this.#paused = reason
  }

  /** Instances may start again; `instance`, started for the restart, serves first. */
  resume(instance: GuestWorker): void {
    this.#paused = undefined
    if (this.#closed) {
      void instance.terminate()
      return
    }
    this.add(instance)
  }

  /** Fails every waiting caller with `reason` and kills every instance with it (a quarantine). */
  abandon(reason: PluginError): void {
    this.#paused = reason
    for (const waiter of this.#waiters.splice(0)) waiter.reject(reason)
    this.#idle.length = 0
    for (const instance of [...this.#all]) {
      this.#forget(instance)
      instance.kill(reason)
    }
  }

  /** The idle instances, taken out of the pool (for shutdown). */
  takeIdle(): GuestWorker[] {
    return this.#idle.splice(0)
  }

  /** Refuses new callers and fails the waiting ones with `unavailable`. */
  close(): void {
    this.#closed = true
    for (const waiter of this.#waiters.splice(0)) waiter.reject(this.#unavailable())
  }

  /** Terminates every instance, busy or not. */
  async terminateAll(): Promise<void> {
    const all = [...this.#all]
    this.#all.clear()
    this.#reserved.clear()
    this.#idle.length = 0
    await Promise.all(all.map((instance) => instance.terminate()))
  }

  #unavailable(): PluginError {
    return new PluginError('unavailable', 'the plugin is shut down', { plugin: this.#options.plugin })
  }
}
