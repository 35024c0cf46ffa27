import type { AbortSignalLike } from '@corral/types'
import { PluginError } from '@corral/types'
import type { GuestWorker } from './guest-worker.js'

/** The pool's size and patience. */
export interface InstancePoolOptions {
  plugin: string
  /** At most this many instances. */
  maxInstances: number
  /** How long a caller waits for a free instance before `resource_exhausted`. */
  waitTimeoutMs: number
  /** Starts one more instance. */
  create(): Promise<GuestWorker>
}

interface Waiter {
  resolve(instance: GuestWorker): void
  reject(error: PluginError): void
  timer: ReturnType<typeof setTimeout>
}

/**
 * The instances of one plugin: up to `maxInstances`, each serving one call at a time. Instances
 * start on demand; one that was stopped (timeout, trap, cancellation) is dropped, and the next
 * caller who finds no free instance starts its replacement. A caller waits at most `waitTimeoutMs`
 * (or until its own deadline), then fails.
 */
export class WasmInstancePool {
  readonly #options: InstancePoolOptions
  readonly #idle: GuestWorker[] = []
  readonly #all = new Set<GuestWorker>()
  readonly #waiters: Waiter[] = []
  /** Instances being started. */
  #starting = 0
  #closed = false

  constructor(options: InstancePoolOptions) {
    this.#options = options
  }

  /** Live instances, busy or idle. */
  get size(): number {
    return this.#all.size
  }

  /** Instances running a call. */
  get busy(): number {
    return this.#all.size - this.#idle.length
  }

  /** Adds an instance started elsewhere (the one a plugin is loaded with). */
  add(instance: GuestWorker): void {
    this.#all.add(instance)
    this.release(instance)
  }

  /**
   * A free instance, started if there is room, or the next one released. A caller who waits gives
   * up at `waitTimeoutMs`, at its deadline, or when its `signal` aborts.
   */
  acquire(deadline: number, signal?: AbortSignalLike): Promise<GuestWorker> {
    if (this.#closed) return Promise.reject(this.#unavailable())
    for (let instance = this.#idle.pop(); instance !== undefined; instance = this.#idle.pop()) {
      if (instance.alive) return Promise.resolve(instance)
      this.#all.delete(instance)
    }
    if (this.#all.size + this.#starting < this.#options.maxInstances) return this.#start()
    return new Promise<GuestWorker>((resolve, reject) => {
      const left = deadline - Date.now()
      const waitMs = Math.max(0, Math.min(this.#options.waitTimeoutMs, left))
      const byDeadline = left < this.#options.waitTimeoutMs
      const giveUp = (error: PluginError) => {
        const at = this.#waiters.indexOf(waiter)
        if (at < 0) return
        this.#waiters.splice(at, 1)
        clearTimeout(waiter.timer)
        signal?.removeEventListener('abort', onAbort)
        reject(error)
      }
      const onAbort = () =>
        giveUp(
          new PluginError('canceled', 'canceled while waiting for a free instance', {
            plugin: this.#options.plugin,
          }),
        )
      const waiter: Waiter = {
        resolve: (instance) => {
          signal?.removeEventListener('abort', onAbort)
          resolve(instance)
        },
        reject: (error) => {
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
                  `all ${this.#options.maxInstances} instances stayed busy for ${this.#options.waitTimeoutMs} ms`,
                  { plugin: this.#options.plugin },
                ),
          )
        }, waitMs),
      }
      this.#waiters.push(waiter)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  async #start(): Promise<GuestWorker> {
    this.#starting++
    try {
      const instance = await this.#options.create()
      this.#all.add(instance)
      if (this.#closed) {
        void instance.terminate()
        throw this.#unavailable()
      }
      return instance
    } finally {
      this.#starting--
    }
  }

  /** Gives an instance back after a call; a stopped one makes room for a replacement. */
  release(instance: GuestWorker): void {
    if (!instance.alive || this.#closed) {
      this.#all.delete(instance)
      if (this.#closed) void instance.terminate()
      const waiter = this.#waiters.shift()
      if (waiter !== undefined) {
        clearTimeout(waiter.timer)
        this.#start().then(waiter.resolve, (error: unknown) => waiter.reject(PluginError.from(error)))
      }
      return
    }
    const waiter = this.#waiters.shift()
    if (waiter === undefined) {
      this.#idle.push(instance)
      return
    }
    clearTimeout(waiter.timer)
    waiter.resolve(instance)
  }

  /** The idle instances, taken out of the pool (for shutdown). */
  takeIdle(): GuestWorker[] {
    return this.#idle.splice(0)
  }

  /** Refuses new callers and fails the waiting ones with `unavailable`. */
  close(): void {
    this.#closed = true
    for (const waiter of this.#waiters.splice(0)) {
      clearTimeout(waiter.timer)
      waiter.reject(this.#unavailable())
    }
  }

  /** Terminates every instance, busy or not. */
  async terminateAll(): Promise<void> {
    const all = [...this.#all]
    this.#all.clear()
    this.#idle.length = 0
    await Promise.all(all.map((instance) => instance.terminate()))
  }

  #unavailable(): PluginError {
    return new PluginError('unavailable', 'the plugin is shut down', { plugin: this.#options.plugin })
  }
}
