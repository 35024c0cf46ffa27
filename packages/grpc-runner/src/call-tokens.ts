import { randomBytes } from 'node:crypto'
import type { PluginError } from '@corral/types'

/** A call of the plugin in flight, as the host calls it makes see it. */
export interface CallRecord {
  /** Epoch ms: host calls made for this call must finish by then. */
  deadline: number
  chain: string[] | undefined
  /** The grant's `max_host_call_bytes` when the call started: its host calls keep it. */
  maxHostCallBytes: number
  /** Fails the call (a unary one; the call stream fails its own). */
  reject(error: PluginError): void
}

/**
 * The calls of one plugin in flight, by token. A host call is served only for a call in flight: its
 * record carries the call's `plugin.call` chain (depth and cycle rules) and deadline, which a host
 * call without one would escape.
 */
export class CallTokens {
  /** Random per plugin: a token made here is not one another plugin's calls carry. */
  readonly #prefix = randomBytes(4).toString('hex')
  #made = 0
  readonly #calls = new Map<string, CallRecord>()

  /** A fresh token for a call that came without one; `kind` names what it is for (`init`). */
  make(kind?: string): string {
    this.#made += 1
    return kind === undefined ? `${this.#prefix}-${this.#made}` : `${this.#prefix}-${kind}-${this.#made}`
  }

  add(token: string, record: CallRecord): void {
    this.#calls.set(token, record)
  }

  get(token: string): CallRecord | undefined {
    return this.#calls.get(token)
  }

  /** Forgets the call, unless its token has been taken by a later call meanwhile (a caller's own token). */
  delete(token: string, record: CallRecord): void {
    if (this.#calls.get(token) === record) this.#calls.delete(token)
  }

  /** Fails every unary call in flight with `error`. */
  failAll(error: PluginError): void {
    for (const record of this.#calls.values()) record.reject(error)
  }
}
