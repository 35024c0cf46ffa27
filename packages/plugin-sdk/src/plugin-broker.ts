import {
  type ConnInfo,
  channelSecurity,
  type MtlsMaterial,
  type PeerSecrets,
  sendPeerSecret,
} from '@corral/proto'
import type { ChannelCredentials, ClientOptions, ServerDuplexStream } from '@grpc/grpc-js'

/** How long a plugin waits for the host's broker to offer a service `Init` named (normally it is there already). */
const brokerOfferTimeoutMs = 5000

/**
 * The plugin's side of go-plugin's broker: the host's StartStream tells it where the host serves a
 * service under an id; {@link PluginBroker.dial} waits for that and says how to reach it.
 */
export class PluginBroker {
  readonly #offered = new Map<number, ConnInfo>()
  readonly #waiting = new Map<number, Array<(info: ConnInfo) => void>>()
  readonly #tls: MtlsMaterial | undefined
  readonly #secrets: PeerSecrets | undefined

  /**
   * `tls`: the plugin's AutoMTLS pair, with the host's certificate as the peer's; `secrets`: the
   * pair the host handed over where TLS is off (the plugin's is sent with every call to the host).
   */
  constructor(tls: MtlsMaterial | undefined, secrets: PeerSecrets | undefined) {
    this.#tls = tls
    this.#secrets = secrets
  }

  /** Serves the host's `StartStream`. */
  attach(stream: ServerDuplexStream<ConnInfo, ConnInfo>): void {
    const fromThisStream = new Map<number, ConnInfo>()
    stream.on('data', (info: ConnInfo) => {
      const id = info.serviceId ?? 0
      this.#offered.set(id, info)
      fromThisStream.set(id, info)
      for (const resolve of this.#waiting.get(id) ?? []) resolve(info)
      this.#waiting.delete(id)
    })
    // What a host that went away offered is gone with it (a host that comes back offers anew).
    const forget = () => {
      for (const [id, info] of fromThisStream) if (this.#offered.get(id) === info) this.#offered.delete(id)
    }
    stream.on('error', forget)
    stream.on('end', () => {
      forget()
      stream.end()
    })
  }

  /** Where the host serves service `id`: waits up to `timeoutMs` for the host to say. */
  async dial(
    id: number,
    timeoutMs = brokerOfferTimeoutMs,
  ): Promise<{ target: string; credentials: ChannelCredentials; options: ClientOptions }> {
    const info =
      this.#offered.get(id) ??
      (await new Promise<ConnInfo>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`the host offered no broker service ${id}`)),
          timeoutMs,
        )
        const list = this.#waiting.get(id) ?? []
        list.push((received) => {
          clearTimeout(timer)
          resolve(received)
        })
        this.#waiting.set(id, list)
      }))
    const target = info.network === 'unix' ? `unix:${info.address}` : String(info.address)
    const { credentials, options } = channelSecurity(this.#tls)
    const secrets = this.#secrets
    return {
      target,
      credentials,
      options:
        secrets === undefined ? options : { ...options, interceptors: [sendPeerSecret(secrets.plugin)] },
    }
  }
}
