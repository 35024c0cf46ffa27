import type { ServerResponse } from 'node:http'
import { type AbortSignalLike, PluginError } from '@corral/types'

/**
 * A signal that aborts when the client goes away before its answer is sent, so that a plugin's
 * work for it stops. A plain object rather than an `AbortController`: on Node 20 making an
 * `AbortSignal` and listening to it costs more than the rest of a plugin route's own work, and
 * every route request needs one.
 *
 * @example
 * await manager.call(plugin, handler, call, { signal: clientGone(reply.raw) })
 */
export function clientGone(response: ServerResponse): AbortSignalLike {
  return new ClientGoneSignal(response)
}

class ClientGoneSignal implements AbortSignalLike {
  readonly #listeners = new Set<() => void>()
  #reason: PluginError | undefined

  constructor(response: ServerResponse) {
    response.once('close', () => {
      if (response.writableFinished) return
      this.#reason = new PluginError('canceled', 'the client went away')
      for (const listener of this.#listeners) listener()
      this.#listeners.clear()
    })
  }

  get aborted(): boolean {
    return this.#reason !== undefined
  }

  get reason(): PluginError | undefined {
    return this.#reason
  }

  /** `close` fires once, so every listener runs at most once, as `{once: true}` asks. */
  addEventListener(_type: 'abort', listener: () => void): void {
    if (this.#reason === undefined) this.#listeners.add(listener)
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    this.#listeners.delete(listener)
  }
}
