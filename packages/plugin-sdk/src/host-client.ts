import { type HostCallResponse, hostService, parseJsonBytes, unary } from '@corral/proto'
import {
  type HostApi,
  type HostMethod,
  type HostMethodArgs,
  type HostMethodResult,
  isPluginErrorData,
  PluginError,
} from '@corral/types'
import { Client, status } from '@grpc/grpc-js'
import { decodeJson } from './function-call.js'
import type { PluginBroker } from './plugin-broker.js'

/**
 * The host's `HostService`, reached over the broker once `Init` named its id. One connection per
 * plugin process; {@link HostConnection.bind} gives each call its own attributed {@link HostApi}.
 */
export class HostConnection {
  readonly #broker: PluginBroker
  #brokerId: number | undefined
  #client: Promise<Client> | undefined

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
    this.#client = undefined
  }

  /** A typed host API whose calls carry `token` and end by `deadline` (epoch ms). */
  bind(token: string, deadline: number | undefined): HostApi {
    return {
      call: <M extends HostMethod>(method: M, args: HostMethodArgs<M>) =>
        this.call(method, args, token, deadline) as Promise<HostMethodResult<M>>,
    }
  }

  async call(method: string, args: unknown, token: string, deadline: number | undefined): Promise<unknown> {
    const client = await this.#connect()
    let response: HostCallResponse
    try {
      response = await unary(
        client,
        hostService.call,
        { method, argsJson: Buffer.from(JSON.stringify(args ?? null)), token },
        deadline === undefined ? {} : { deadline: new Date(deadline) },
      )
    } catch (error) {
      // The host answers a host call in its response; a status means the call did not get there or back.
      const code =
        (error as { code?: number }).code === status.DEADLINE_EXCEEDED ? 'deadline_exceeded' : 'unavailable'
      throw new PluginError(code, `host call ${method} failed: ${(error as Error).message}`, { cause: error })
    }
    if (response.errorJson && response.errorJson.length > 0) {
      const data: unknown = parseJsonBytes(response.errorJson)
      throw isPluginErrorData(data)
        ? PluginError.fromData(data)
        : new PluginError('internal', 'host call failed')
    }
    return decodeJson(response.resultJson)
  }

  #connect(): Promise<Client> {
    const id = this.#brokerId
    if (id === undefined) {
      return Promise.reject(new PluginError('unavailable', 'the host API is not available before init'))
    }
    this.#client ??= this.#broker
      .dial(id)
      .then(({ target, credentials, options }) => new Client(target, credentials, options))
    return this.#client
  }

  /** Closes the connection to the host (the next host call, after a new `Init`, opens another). */
  close(): void {
    void this.#client?.then((client) => client.close())
  }
}
