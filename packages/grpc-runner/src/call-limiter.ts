import { type AbortSignalLike, PluginError } from '@corral/types'

interface Waiter {
  resolve(): void
  reject(error: PluginError): void
  timer: NodeJS.Timeout | undefined
  signal: AbortSignalLike | undefined
  onAbort: (() => void) | undefined
}

/** The administrator's bounds on one plugin's calls (`ResourceLimits`). */
export interface CallLimits {
  max_concurrent_calls: number
  max_queued_calls: number
}

/**
 * Bounds the calls one plugin has in flight (`max_concurrent_calls`) and waiting for a slot
 * (`max_queued_calls`), so that a burst at one plugin is queued or refused at that plugin and costs
 * the host's event loop nothing for the excess. A call with a free slot takes it with a counter
 * increment (no promise, no timer); only a queued call pays for its deadline timer and abort listener.
 */
export class CallLimiter {
  #limits: CallLimits
  readonly #plugin: string
  #inFlight = 0
  /** Insertion-ordered: the first is the oldest; a waiter that gives up leaves in O(1). */
  readonly #queue = new Set<Waiter>()

  constructor(limits: CallLimits, plugin: string) {
    this.#limits = limits
    this.#plugin = plugin
  }

  /** Takes a slot if one is free. Every slot taken (here or by {@link CallLimiter.wait}) is given back with {@link CallLimiter.release}. */
  tryAcquire(): boolean {
    if (this.#inFlight >= this.#limits.max_concurrent_calls) return false
    this.#inFlight += 1
    return true
  }

  /**
   * Waits in the queue for a slot, which is taken when the promise resolves. Fails at once with
   * `resource_exhausted` when the queue is full, with `deadline_exceeded` at `deadline` (epoch ms),
   * with `canceled` when `signal` aborts.
   */
  wait(fn: string, deadline: number, signal: AbortSignalLike | undefined): Promise<void> {
    const { max_concurrent_calls, max_queued_calls } = this.#limits
    if (this.#queue.size >= max_queued_calls) {
      return Promise.reject(
        new PluginError(
          'resource_exhausted',
          `${fn} refused: ${max_concurrent_calls} calls running (max_concurrent_calls) and ${this.#queue.size} waiting (max_queued_calls ${max_queued_calls})`,
          { plugin: this.#plugin },
        ),
      )
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, timer: undefined, signal, onAbort: undefined }
      const giveUp = (error: PluginError) => {
        this.#leave(waiter)
        reject(error)
      }
      waiter.timer = setTimeout(
        () =>
          giveUp(
            new PluginError(
              'deadline_exceeded',
              `${fn} ran out of time waiting for one of ${max_concurrent_calls} call slots (max_concurrent_calls)`,
              { plugin: this.#plugin },
            ),
          ),
        Math.max(0, deadline - Date.now()),
      )
      if (signal !== undefined) {
        waiter.onAbort = () =>
          giveUp(
            new PluginError('canceled', `${fn} was canceled while it waited for a call slot`, {
              plugin: this.#plugin,
              cause: signal.reason,
            }),
          )
        signal.addEventListener('abort', waiter.onAbort, { once: true })
      }
      this.#queue.add(waiter)
    })
  }

  /** Gives a slot back: the oldest waiter takes it, if the limit (perhaps lowered since) allows. */
  release(): void {
    this.#inFlight -= 1
    if (this.#inFlight >= this.#limits.max_concurrent_calls) return
    const next = this.#queue.values().next()
    if (next.done === true) return
    this.#leave(next.value)
    this.#inFlight += 1
    next.value.resolve()
  }

  /**
   * Takes new limits (a changed grant): calls already running keep their slots; a raised
   * `max_concurrent_calls` lets waiting calls in at once, a lowered one admits no call until enough
   * have finished. Waiting calls stay queued either way.
   */
  update(limits: CallLimits): void {
    this.#limits = limits
    for (const waiter of this.#queue) {
      if (this.#inFlight >= limits.max_concurrent_calls) return
      this.#leave(waiter)
      this.#inFlight += 1
      waiter.resolve()
    }
  }

  /** Fails every waiting call with `error` (the plugin stopped or crashed). */
  failQueued(error: PluginError): void {
    for (const waiter of this.#queue) {
      this.#leave(waiter)
      waiter.reject(error)
    }
  }

  #leave(waiter: Waiter): void {
    this.#queue.delete(waiter)
    clearTimeout(waiter.timer)
    if (waiter.onAbort !== undefined) waiter.signal?.removeEventListener('abort', waiter.onAbort)
  }
}
