import type { RuntimeState, RuntimeStateChange } from './plugin.js'

/** When a crashed plugin is started again, and when it is given up on. */
export interface RestartOptions {
  /** More restarts than this within `restartWindowMs` quarantine the plugin. Default 5. */
  maxRestarts: number
  restartWindowMs: number
  /** The first restart waits this long; each further one in the window twice as long. */
  initialBackoffMs: number
  maxBackoffMs: number
}

export const defaultRestartOptions: RestartOptions = {
  maxRestarts: 5,
  restartWindowMs: 60_000,
  initialBackoffMs: 200,
  maxBackoffMs: 10_000,
}

/** The clock and timer a {@link RestartSupervisor} uses; tests pass fake ones. */
export interface SupervisorClock {
  now(): number
  setTimeout(run: () => void, ms: number): unknown
  clearTimeout(timer: unknown): void
}

/** The host's timers, declared here so that `@corral/types` needs neither the DOM's nor Node's types. */
const timers = globalThis as unknown as {
  setTimeout(run: () => void, ms: number): { unref?: () => void }
  clearTimeout(timer: unknown): void
}

const realClock: SupervisorClock = {
  now: () => Date.now(),
  setTimeout: (run, ms) => {
    const timer = timers.setTimeout(run, ms)
    // A pending restart never keeps the host's process alive on its own.
    timer.unref?.()
    return timer
  },
  clearTimeout: (timer) => timers.clearTimeout(timer),
}

/** What the supervisor asks of the runtime it supervises. */
export interface RestartTarget {
  /** Starts the plugin again (a new process, new instances); rejects when that fails. */
  restart(): Promise<void>
  log(level: 'warn' | 'error', message: string): void
}

/**
 * The one implementation of crash supervision, for every runtime: the plugin's {@link RuntimeState},
 * restarts with exponential backoff, quarantine after too many restarts within a window, and the
 * listeners of state changes. The runtime reports crashes with {@link RestartSupervisor.crashed}.
 */
export class RestartSupervisor {
  #state: RuntimeState = 'running'
  #restarts: number[] = []
  #timer: unknown
  readonly #listeners = new Set<(change: RuntimeStateChange) => void>()
  readonly #target: RestartTarget
  readonly #options: RestartOptions
  readonly #clock: SupervisorClock

  constructor(target: RestartTarget, options: RestartOptions, clock: SupervisorClock = realClock) {
    this.#target = target
    this.#options = options
    this.#clock = clock
  }

  get state(): RuntimeState {
    return this.#state
  }

  /** Whether the plugin is being stopped or has stopped: crashes then are expected, not restarted. */
  get stopping(): boolean {
    return this.#state === 'stopping' || this.#state === 'stopped'
  }

  onStateChange(listener: (change: RuntimeStateChange) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** The runtime lost the plugin (its process exited, its instance trapped): restart or quarantine. */
  crashed(reason: string): void {
    if (this.stopping || this.#state === 'quarantined') return
    this.#schedule(reason)
  }

  #schedule(reason: string): void {
    const now = this.#clock.now()
    const { maxRestarts, restartWindowMs, initialBackoffMs, maxBackoffMs } = this.#options
    this.#restarts = this.#restarts.filter((at) => now - at < restartWindowMs)
    if (this.#restarts.length >= maxRestarts) {
      const why = `${this.#restarts.length} restarts within ${restartWindowMs} ms; last: ${reason}`
      this.#target.log('error', `quarantined: ${why}`)
      this.#move('quarantined', why)
      return
    }
    this.#restarts.push(now)
    const backoff = Math.min(initialBackoffMs * 2 ** (this.#restarts.length - 1), maxBackoffMs)
    this.#target.log('warn', `restarts in ${backoff} ms: ${reason}`)
    this.#move('restarting', reason)
    this.#timer = this.#clock.setTimeout(() => void this.#restartNow(), backoff)
  }

  /** Lifts a quarantine: forgets the restart history and restarts at once. */
  async reset(): Promise<void> {
    if (this.#state !== 'quarantined') return
    this.#restarts = []
    this.#move('restarting', 'reset by an administrator')
    await this.#restartNow()
  }

  /** The plugin is being shut down: no restart from now on. */
  stop(): void {
    this.#clock.clearTimeout(this.#timer)
    this.#move('stopping', 'shutdown')
  }

  /** The plugin has shut down. */
  stopped(): void {
    this.#clock.clearTimeout(this.#timer)
    this.#move('stopped', 'shutdown')
  }

  async #restartNow(): Promise<void> {
    if (this.#state !== 'restarting') return
    try {
      await this.#target.restart()
      if (this.#state === 'restarting') this.#move('running', 'restarted')
    } catch (error) {
      if (this.#state !== 'restarting') return
      const message = error instanceof Error ? error.message : String(error)
      this.#schedule(`restart failed: ${message}`)
    }
  }

  #move(to: RuntimeState, reason: string): void {
    const from = this.#state
    if (from === to) return
    this.#state = to
    const change: RuntimeStateChange = { from, to, reason, at: this.#clock.now() }
    for (const listener of this.#listeners) listener(change)
  }
}
