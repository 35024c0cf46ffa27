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
  const listeners = new Set<() => void>()
  let reason: PluginError | undefined
  response.once('close', () => {
    if (response.writableFinished) return
    reason = new PluginError('canceled', 'the client went away')
    for (const listener of listeners) listener()
    listeners.clear()
  })
  return {
    get aborted() {
      return reason !== undefined
    },
    get reason() {
      return reason
    },
    // `close` fires once, so every listener runs at most once, as `{once: true}` asks.
    addEventListener: (_type, listener) => {
      if (reason === undefined) listeners.add(listener)
    },
    removeEventListener: (_type, listener) => {
      listeners.delete(listener)
    },
  }
}
