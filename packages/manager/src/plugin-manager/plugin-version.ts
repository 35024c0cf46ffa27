import type { EffectiveGrant, Manifest, Plugin, Registration } from '@corral/types'

/**
 * One loaded, registered and initialised version of a plugin. A reload puts a new one beside the
 * old: calls that started on the old one finish there (its in-flight count), new ones go to the new.
 */
export class PluginVersion {
  readonly plugin: Plugin
  readonly manifest: Manifest
  readonly dir: string
  readonly registration: Registration
  readonly config: Record<string, unknown>
  grant: EffectiveGrant
  #inFlight = 0
  #drained: Array<() => void> = []
  #stopWatching: () => void = () => {}

  constructor(parts: {
    plugin: Plugin
    manifest: Manifest
    dir: string
    registration: Registration
    config: Record<string, unknown>
    grant: EffectiveGrant
  }) {
    this.plugin = parts.plugin
    this.manifest = parts.manifest
    this.dir = parts.dir
    this.registration = parts.registration
    this.config = parts.config
    this.grant = parts.grant
  }

  get inFlight(): number {
    return this.#inFlight
  }

  /**
   * Counts one call in flight on this version from now; {@link PluginVersion.left} ends it, once.
   * (Two calls, not a wrapper around the call's promise: the manager settles the call's metrics and
   * its in-flight count in one step, without one more promise per call.)
   */
  entered(): void {
    this.#inFlight += 1
  }

  /** The call counted by {@link PluginVersion.entered} has settled. */
  left(): void {
    this.#inFlight -= 1
    if (this.#inFlight === 0) for (const resolve of this.#drained.splice(0)) resolve()
  }

  /** Resolves once no call runs on this version, or after `limitMs` (a hung call does not hold a stop forever). */
  drain(limitMs: number): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve()
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, limitMs)
      timer.unref()
      this.#drained.push(() => {
        clearTimeout(timer)
        resolve()
      })
    })
  }

  /** Follows the runtime's supervision state; the previous listener, if any, is dropped. */
  watch(listener: Parameters<Plugin['onStateChange']>[0]): void {
    this.#stopWatching()
    this.#stopWatching = this.plugin.onStateChange(listener)
  }

  /** Stops following the runtime's state (before the manager stops it itself). */
  unwatch(): void {
    this.#stopWatching()
    this.#stopWatching = () => {}
  }
}
