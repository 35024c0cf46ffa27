import { parseJsonBytes } from '@corral/proto'
import {
  type HostApi,
  type HostMethod,
  type HostMethodArgs,
  type HostMethodResult,
  isPluginErrorData,
  PluginError,
} from '@corral/types'
import { Client } from '@grpc/grpc-js'
import { decodeJson } from './function-call.js'
import { HostCallStream } from './host-call-stream.js'
import type { PluginBroker } from './plugin-broker.js'

/**
 * The host's `HostService`, reached over the broker once `Init` named its id. One connection per
 * plugin process; {@link HostConnection.bind} gives each call its own attributed {@link HostApi}.
 */
export class HostConnection {
  readonly #broker: PluginBroker
  #brokerId: number | undefined
  #calls: Promise<HostCallStream> | undefined

  constructor(broker: PluginBroker) {
    this.#broker = broker
  }

  /**
   * Set by `Init`. A host that reattaches after losing its connection inits again with a new broker
   * address (maybe under the same id): the old connection goes.
   */
  setBrokerId(id: number): void {
    this.#brokerId = id
    this.close()
    this.#calls = undefined
  }

  /** A typed host API whose calls carry `token` and end by `deadline` (epoch ms). */
  bind(token: string, deadline: number | undefined): HostApi {
    return {
      call: <M extends HostMethod>(method: M, args: HostMethodArgs<M>) =>
        this.call(method, args, token, deadline) as Promise<HostMethodResult<M>>,
    }
  }

  async call(method: string, args: unknown, token: string, deadline: number | undefined): Promise<unknown> {
    const calls = await this.#connect()
    const response = await calls.call(
      { method, argsJson: Buffer.from(JSON.stringify(args ?? null)), token },
      deadline,
    )
    if (response.errorJson && response.errorJson.length > 0) {
      const data: unknown = parseJsonBytes(response.errorJson)
      throw isPluginErrorData(data)
        ? PluginError.fromData(data)
        : new PluginError('internal', 'host call failed')
    }
    return decodeJson(response.resultJson)
  }

  #connect(): Promise<HostCallStream> {
    const id = this.#brokerId
    if (id === undefined) {
      return Promise.reject(new PluginError('unavailable', 'the host API is not available before init'))
    }
    this.#calls ??= this.#broker
      .dial(id)
      .then(
        ({ target, credentials, options }) => new HostCallStream(new Client(target, credentials, options)),
      )
    return this.#calls
  }

  /** Closes the connection to the host (the next host call, after a new `Init`, opens another). */
  close(): void {
    void this.#calls?.then((calls) => calls.close())
  }
}
