import type { PluginState, RuntimeState } from '@corral/types'
import { PluginError } from '@corral/types'
import type { StateTransition } from './manager-api.js'

/**
 * Where each state may go. A transition to the state a plugin is already in is allowed only where
 * something happened that the history must show without a change of state (a reload, one that
 * failed, a policy applied live): `running → running`.
 */
const allowedMoves: Record<PluginState, readonly PluginState[]> = {
  discovered: ['loading', 'failed', 'blocked'],
  loading: ['running', 'failed', 'blocked', 'stopping'],
  running: ['running', 'degraded', 'quarantined', 'stopping', 'blocked'],
  degraded: ['running', 'degraded', 'quarantined', 'stopping', 'blocked'],
  quarantined: ['degraded', 'running', 'quarantined', 'stopping', 'blocked'],
  stopping: ['stopped', 'blocked', 'failed'],
  stopped: ['loading', 'blocked', 'failed'],
  failed: ['loading', 'failed', 'blocked', 'stopping'],
  blocked: ['loading', 'blocked', 'failed'],
}

/** The manager's state for each state a runner's supervision reports. */
export const stateOfRuntime: Record<RuntimeState, PluginState> = {
  running: 'running',
  restarting: 'degraded',
  quarantined: 'quarantined',
  stopping: 'stopping',
  stopped: 'stopped',
}

/**
 * One plugin's place in the lifecycle discovered → loading → running ⇄ degraded → stopping →
 * stopped (or failed, quarantined, blocked), with a bounded history of its transitions. Every
 * transition goes to `onTransition` (events, persistence).
 */
export class PluginLifecycle {
  #state: PluginState = 'discovered'
  readonly #history: StateTransition[]
  readonly #plugin: string
  readonly #historySize: number
  readonly #onTransition: (transition: StateTransition) => void
  readonly #now: () => number

  constructor(options: {
    plugin: string
    historySize: number
    onTransition: (transition: StateTransition) => void
    now?: () => number
    /** Transitions kept from before (the database's), oldest first. */
    history?: StateTransition[]
  }) {
    this.#plugin = options.plugin
    this.#historySize = options.historySize
    this.#onTransition = options.onTransition
    this.#now = options.now ?? Date.now
    this.#history = (options.history ?? []).slice(-options.historySize)
  }

  get state(): PluginState {
    return this.#state
  }

  /** Oldest first. */
  get history(): StateTransition[] {
    return [...this.#history]
  }

  /** Moves to `to`; a move the lifecycle does not have is a host bug (`internal`). */
  move(to: PluginState, reason: string): void {
    const from = this.#state
    if (!allowedMoves[from].includes(to)) {
      throw new PluginError('internal', `no transition from ${from} to ${to} (${reason})`, {
        plugin: this.#plugin,
      })
    }
    this.#state = to
    const transition: StateTransition = { at: this.#now(), from, to, reason }
    this.#history.push(transition)
    if (this.#history.length > this.#historySize) this.#history.shift()
    this.#onTransition(transition)
  }
}
