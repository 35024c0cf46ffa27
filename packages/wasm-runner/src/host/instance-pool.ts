import type { AbortSignalLike, SupervisorClock } from '@corral/types'
import { PluginError } from '@corral/types'

/** The pool's size and patience; {@link InstancePool.resize} changes them live. */
export interface PoolLimits {
  /** At most this many instances. */
  maxInstances: number
  /** At most this many calls hold an instance at once (running, or queued behind a running one). */
  maxConcurrentCalls: number
  /** At most this many callers wait for an instance; one more fails at once with `resource_exhausted`. */
  maxQueuedCalls: number
  /** How long a caller waits for a free instance before `resource_exhausted`. */
  waitTimeoutMs: number
  /** An instance idle this long is stopped (the next call that finds none free starts one). */
  idleTimeoutMs: number
}

/** What the pool asks of an instance (a {@link WorkerHandle}; a fake in the pool's unit tests). */
export interface PooledInstance {
  /** False once the instance is lost (a crash, a deadline) or stopped: the pool drops it. */
  readonly alive: boolean
  /** Whether a call may be queued behind its running one now. */
  readonly canQueue: boolean
  /** The most calls it holds at once: the running one and those queued behind it. */
  readonly maxCalls: number
  /** Stops the worker by force; the running call fails with `reason` ({@link WorkerHandle.terminate}). */
  terminate(reason?: PluginError): Promise<void>
}

/** The pool's limits, and how it starts an instance. */
export interface InstancePoolOptions<I extends PooledInstance> extends PoolLimits {
  plugin: string
  /** Starts one more instance. */
  create(): Promise<I>
  /** Stops an instance idle for `idleTimeoutMs`. Default: {@link PooledInstance.terminate}. */
  stopIdle?(instance: I): Promise<void>
  /** The clock of the callers' deadlines and waits (tests pass a manual one). */
  clock?: SupervisorClock | undefined
  /** The pools this one shares the machine with (a runner's): past its first instance, it grows only while they leave room. */
  group?: PoolGroup | undefined
}

/** What a {@link PoolGroup} asks of a pool. */
interface GroupMember {
  /** Instances running calls or starting. */
  readonly busy: number
}

/**
 * The pools of one runner, which share the machine's cores: a pool starts an instance beyond its
 * first only while the group's busy instances (running calls, or starting) are fewer than
 * `maxBusy`. Without such a bound, many busy plugins on a small machine each grow to their own
 * `max_instances`: sixteen plugins with the default pool of 4 started 64 worker threads on 2
 * cores, whose start-ups held each other past the instantiation limit, and whose calls ran no
 * faster than on 16 (more threads than cores only take turns).
 */
export class PoolGroup {
  readonly #pools = new Set<GroupMember>()

  constructor(
    /** Past this many busy instances in the group, its pools grow no more (each may always start its first). */
    readonly maxBusy: number,
  ) {}

  /** Whether a pool of the group may start one more instance beyond its first. */
  get hasRoom(): boolean {
    let busy = 0
    for (const pool of this.#pools) busy += pool.busy
    return busy < this.maxBusy
  }

  join(pool: GroupMember): void {
    this.#pools.add(pool)
  }

  leave(pool: GroupMember): void {
    this.#pools.delete(pool)
  }
}

/** The host's clock and timers. */
const systemClock: SupervisorClock = {
  now: () => Date.now(),
  setTimeout: (run, ms) => setTimeout(run, ms),
  clearTimeout: (timer) => clearTimeout(timer as ReturnType<typeof setTimeout>),
}

interface Waiter<I> {
  /** Whether the caller's call may be queued behind a running one on this instance. */
  mayQueueOn(instance: I): boolean
  resolve(instance: I): void
  reject(error: PluginError): void
  timer: unknown
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
export class InstancePool<I extends PooledInstance> {
  readonly #options: InstancePoolOptions<I>
  readonly #clock: SupervisorClock
  /** Instances started before the last {@link InstancePool.retire}: stopped when released. */
  readonly #retired = new Set<I>()
  /** Why no instance may start now (the plugin is restarting), if so. */
  #paused: PluginError | undefined
  /** Idle instances, the least recently used first; a call takes the last one. */
  readonly #idle: I[] = []
  /** When each instance of `#idle` (same index) became idle, by the clock. */
  readonly #idleSince: number[] = []
  /** The timer that stops instances idle for `idleTimeoutMs`, while any is idle. */
  #idleTimer: unknown
  /** Stops of instances idle too long: they count against `maxInstances` until done. */
  readonly #stopping = new Set<Promise<void>>()
  readonly #all = new Set<I>()
  readonly #waiters: Waiter<I>[] = []
  /** Calls handed out per live instance: 1 running, more with calls queued behind it. */
  readonly #reserved = new Map<I, number>()
  /** Instances being started. */
  #starting = 0
  /** Calls handed an instance (or an instance being started for them) and not yet released. */
  #inFlight = 0
  #closed = false

  constructor(options: InstancePoolOptions<I>) {
    this.#options = { ...options }
    this.#clock = options.clock ?? systemClock
    options.group?.join(this)
  }

  /** Live instances, busy or idle. */
  get size(): number {
    return this.#all.size
  }

  /** Instances that hold a worker: live, starting, or stopping after their idle time. */
  get #live(): number {
    return this.#all.size + this.#starting + this.#stopping.size
  }

  /** Instances running calls, or starting. */
  get busy(): number {
    let busy = this.#starting
    for (const reserved of this.#reserved.values()) if (reserved > 0) busy++
    return busy
  }

  /** Adds an instance started elsewhere (the one a plugin is loaded with). */
  add(instance: I): void {
    this.#all.add(instance)
    this.#reserved.set(instance, 1)
    this.#inFlight++
    this.release(instance)
  }

  /** An idle live instance, reserved for one call. */
  #idleInstance(): I | undefined {
    for (let instance = this.#idle.pop(); instance !== undefined; instance = this.#idle.pop()) {
      this.#idleSince.pop()
      if (instance.alive) {
        this.#reserved.set(instance, 1)
        return instance
      }
      this.#forget(instance)
    }
    return undefined
  }

  /**
   * The busy instance with the fewest calls that can take one more queued behind its running one,
   * reserved for it.
   */
  #queueableInstance(mayQueueOn: (instance: I) => boolean): I | undefined {
    let chosen: I | undefined
    let fewest = Number.POSITIVE_INFINITY
    for (const instance of this.#all) {
      const reserved = this.#reserved.get(instance) ?? 0
      if (
        reserved > 0 &&
        reserved < fewest &&
        reserved < instance.maxCalls &&
        instance.canQueue &&
        mayQueueOn(instance)
      ) {
        chosen = instance
        fewest = reserved
      }
    }
    if (chosen !== undefined) this.#reserved.set(chosen, fewest + 1)
    return chosen
  }

  #forget(instance: I): void {
    this.#all.delete(instance)
    this.#reserved.delete(instance)
    this.#retired.delete(instance)
  }

  /**
   * An instance for one call, reserved for it, if the concurrency limit leaves room: an idle one,
   * one started now, or one whose running call the caller's may queue behind.
   */
  #grant(mayQueueOn: (instance: I) => boolean): I | Promise<I> | undefined {
    if (this.#inFlight >= this.#options.maxConcurrentCalls) return undefined
    let instance = this.#idleInstance()
    if (instance === undefined) {
      if (this.#paused === undefined && this.#live < this.#options.maxInstances && this.#mayGrow()) {
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
    mayQueueOn: (instance: I) => boolean = () => true,
  ): Promise<I> {
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
    return new Promise<I>((resolve, reject) => {
      const left = deadline - this.#clock.now()
      const waitMs = Math.max(0, Math.min(this.#options.waitTimeoutMs, left))
      const byDeadline = left < this.#options.waitTimeoutMs
      const giveUp = (error: PluginError) => {
        const at = this.#waiters.indexOf(waiter)
        if (at < 0) return
        this.#waiters.splice(at, 1)
        waiter.reject(error)
      }
      const onAbort = () =>
        giveUp(
          new PluginError('canceled', 'canceled while waiting for a free instance', {
            plugin: this.#options.plugin,
          }),
        )
      const waiter: Waiter<I> = {
        mayQueueOn,
        resolve: (instance) => {
          this.#clock.clearTimeout(waiter.timer)
          signal?.removeEventListener('abort', onAbort)
          resolve(instance)
        },
        reject: (error) => {
          this.#clock.clearTimeout(waiter.timer)
          signal?.removeEventListener('abort', onAbort)
          reject(error)
        },
        timer: this.#clock.setTimeout(() => {
          giveUp(
            // Waiting in vain for a restart: the restart's reason, not a full pool, is why.
            this.#paused ??
              (byDeadline
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
                  )),
          )
        }, waitMs),
      }
      this.#waiters.push(waiter)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  /**
   * Whether one more instance may start as far as the group goes: always a first one (nothing else
   * would serve the caller), beyond that while the group has room.
   */
  #mayGrow(): boolean {
    const { group } = this.#options
    return group === undefined || this.#all.size + this.#starting === 0 || group.hasRoom
  }

  /** Starts an instance for one call: it counts as in flight from now, and stops counting if the start fails. */
  async #start(): Promise<I> {
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
  release(instance: I): void {
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
          else this.#becameIdle(instance)
        }
      }
    }
    if (this.#waiters.length > 0) this.#serveWaiters()
  }

  #becameIdle(instance: I): void {
    this.#idle.push(instance)
    this.#idleSince.push(this.#clock.now())
    this.#idleTimer ??= this.#clock.setTimeout(() => this.#stopIdleOnes(), this.#options.idleTimeoutMs)
  }

  /**
   * Stops the instances idle for `idleTimeoutMs` (the least recently used are first in `#idle`),
   * and sets the timer again for the next one to reach it. A call finding no instance free starts
   * one, or, with `maxInstances` reached while one is stopping, waits for that stop to end.
   */
  #stopIdleOnes(): void {
    this.#idleTimer = undefined
    if (this.#closed) return
    const cutoff = this.#clock.now() - this.#options.idleTimeoutMs
    let expired = 0
    while (expired < this.#idle.length && (this.#idleSince[expired] as number) <= cutoff) expired++
    const stopped = this.#idle.splice(0, expired)
    this.#idleSince.splice(0, expired)
    for (const instance of stopped) {
      this.#forget(instance)
      const stop = (this.#options.stopIdle?.(instance) ?? instance.terminate())
        .catch(() => undefined)
        .then(() => {
          this.#stopping.delete(stop)
          if (this.#waiters.length > 0) this.#serveWaiters()
        })
      this.#stopping.add(stop)
    }
    const next = this.#idleSince[0]
    if (next !== undefined) {
      this.#idleTimer = this.#clock.setTimeout(
        () => this.#stopIdleOnes(),
        Math.max(0, next + this.#options.idleTimeoutMs - this.#clock.now()),
      )
    }
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
    const { maxInstances, maxConcurrentCalls, maxQueuedCalls, waitTimeoutMs, idleTimeoutMs } = limits
    Object.assign(this.#options, {
      maxInstances,
      maxConcurrentCalls,
      maxQueuedCalls,
      waitTimeoutMs,
      idleTimeoutMs,
    })
    while (this.#surplus() && this.#idle.length > 0) {
      this.#idleSince.pop()
      this.#stopIdle(this.#idle.pop() as I)
    }
    if (this.#waiters.length > 0) this.#serveWaiters()
  }

  /**
   * Instances started from now on get new settings: the idle ones stop now, the busy ones when
   * their calls are done.
   */
  retire(): void {
    this.#idleSince.length = 0
    for (const instance of this.#idle.splice(0)) this.#stopIdle(instance)
    for (const instance of this.#all) this.#retired.add(instance)
  }

  #stopIdle(instance: I): void {
    this.#forget(instance)
    void instance.terminate()
  }

  /**
   * No instance starts until {@link InstancePool.resume}: callers who find none free wait,
   * and fail with `reason` when their wait ends first.
   */
  pause(reason: PluginError): void {
    this.#paused = reason
  }

  /** Instances may start again; `instance`, started for the restart, serves first. */
  resume(instance: I): void {
    this.#paused = undefined
    if (this.#closed) {
      void instance.terminate()
      return
    }
    this.add(instance)
  }

  /** The idle instances, taken out of the pool (for shutdown). */
  takeIdle(): I[] {
    this.#idleSince.length = 0
    return this.#idle.splice(0)
  }

  /**
   * Refuses new callers and fails the waiting ones with `unavailable`: the first step of the
   * plugin's shutdown, before its instances are terminated.
   */
  close(): void {
    this.#closed = true
    this.#options.group?.leave(this)
    this.#clock.clearTimeout(this.#idleTimer)
    this.#idleTimer = undefined
    for (const waiter of this.#waiters.splice(0)) waiter.reject(this.#unavailable())
  }

  /**
   * Terminates every instance's worker, busy or not, and fails the waiting callers: with `reason`
   * (a quarantine; calls running fail with it too), or, without one, as at shutdown.
   */
  async terminateAll(reason?: PluginError): Promise<void> {
    const all = [...this.#all]
    this.#all.clear()
    this.#reserved.clear()
    this.#retired.clear()
    this.#idle.length = 0
    this.#idleSince.length = 0
    this.#clock.clearTimeout(this.#idleTimer)
    this.#idleTimer = undefined
    for (const waiter of this.#waiters.splice(0)) waiter.reject(reason ?? this.#unavailable())
    // Instances stopping after their idle time are waited for too: none outlives the pool.
    await Promise.all([...all.map((instance) => instance.terminate(reason)), ...this.#stopping])
  }

  #unavailable(): PluginError {
    return new PluginError('unavailable', 'the plugin is shut down', { plugin: this.#options.plugin })
  }
}
