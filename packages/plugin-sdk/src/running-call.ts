import type { HostApi } from '@corral/types'
import { PluginError } from '@corral/types'
import type { CallContext } from './define-plugin.js'
import type { HostConnection } from './host-client.js'
import { type PluginCache, pluginCache } from './plugin-cache.js'

/**
 * One call in progress: its {@link CallContext}. The AbortController, the deadline timer and the
 * bound host API are made only when the function asks for them, since most calls never do and each
 * costs more than the rest of the call path (see PERFORMANCE.md, `grpc.call`).
 */
export class RunningCall implements CallContext {
  readonly token: string
  readonly deadline: number | undefined
  readonly #connection: HostConnection
  #host: HostApi | undefined
  #controller: AbortController | undefined
  #timer: NodeJS.Timeout | undefined
  #reason: PluginError | undefined

  constructor(connection: HostConnection, token: string, deadline: number | undefined) {
    this.#connection = connection
    this.token = token
    this.deadline = deadline
  }

  get host(): HostApi {
    this.#host ??= this.#connection.bind(this.token, this.deadline)
    return this.#host
  }

  get cache(): PluginCache {
    return pluginCache(this.host)
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController()
      if (this.#reason !== undefined) this.#controller.abort(this.#reason)
      else if (this.deadline !== undefined) {
        this.#timer = setTimeout(
          () => this.abort(new PluginError('deadline_exceeded', 'the call ran out of time')),
          Math.max(0, this.deadline - Date.now()),
        )
      }
    }
    return this.#controller.signal
  }

  /** Whether the host canceled the call (its result is then not sent). */
  get aborted(): boolean {
    return this.#reason !== undefined
  }

  abort(reason: PluginError): void {
    if (this.#reason !== undefined) return
    this.#reason = reason
    clearTimeout(this.#timer)
    this.#controller?.abort(reason)
  }

  /** Releases the deadline timer once the function has returned. */
  finish(): void {
    clearTimeout(this.#timer)
  }
}
