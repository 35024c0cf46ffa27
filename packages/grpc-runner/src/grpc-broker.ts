import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { PluginError } from '@corral/types'
import {
  type ChannelCredentials,
  type Client,
  type ClientDuplexStream,
  credentials,
  Server,
  ServerCredentials,
} from '@grpc/grpc-js'
import { bidi } from './rpc.js'
import { brokerService, type ConnInfo } from './wire.js'

/** TLS material of one side of an AutoMTLS connection. */
export interface MtlsMaterial {
  /** The peer's certificate: the one root trusted. */
  peerCertPem: string
  certPem: string
  keyPem: string
}

/** Where to reach a service the plugin offers over the broker. */
export interface BrokerTarget {
  target: string
  credentials: ChannelCredentials
  options: Record<string, string | number>
}

/**
 * The host's side of go-plugin's connection broker (`plugin.GRPCBroker/StartStream`), both ways:
 * {@link GrpcBroker.serve} offers a host service to the plugin under an id, {@link GrpcBroker.dial}
 * reaches a service the plugin offers.
 */
export class GrpcBroker {
  readonly #stream: ClientDuplexStream<ConnInfo, ConnInfo>
  readonly #socketDir: string
  readonly #tls: MtlsMaterial | undefined
  readonly #name: string
  readonly #offered = new Map<number, ConnInfo>()
  readonly #waiting = new Map<number, (info: ConnInfo) => void>()
  readonly #servers: Server[] = []
  #nextId = 0
  #closed = false

  /** @internal Opened by the go-plugin client once connected. */
  constructor(client: Client, options: { socketDir: string; tls?: MtlsMaterial; name: string }) {
    this.#socketDir = options.socketDir
    this.#tls = options.tls
    this.#name = options.name
    this.#stream = bidi(client, brokerService.startStream)
    this.#stream.on('data', (info: ConnInfo) => {
      const id = info.serviceId ?? 0
      const waiter = this.#waiting.get(id)
      if (waiter === undefined) this.#offered.set(id, info)
      else {
        this.#waiting.delete(id)
        waiter(info)
      }
    })
    // The stream ends with the plugin; pending dials fail on their own timeout.
    this.#stream.on('error', () => {})
  }

  /** A broker id not used before by this host. */
  nextId(): number {
    this.#nextId += 1
    return this.#nextId
  }

  /**
   * Serves a gRPC server (filled by `addServices`) on a fresh unix socket and tells the plugin its
   * address under `id`; the plugin dials it with its broker.
   */
  async serve(id: number, addServices: (server: Server) => void): Promise<void> {
    if (this.#closed) throw new PluginError('unavailable', 'the broker is closed', { plugin: this.#name })
    const server = new Server({ 'grpc.max_receive_message_length': -1 })
    addServices(server)
    const address = join(this.#socketDir, `broker-${id}-${randomBytes(4).toString('hex')}.sock`)
    const serverCredentials =
      this.#tls === undefined
        ? ServerCredentials.createInsecure()
        : ServerCredentials.createSsl(
            Buffer.from(this.#tls.peerCertPem),
            [{ private_key: Buffer.from(this.#tls.keyPem), cert_chain: Buffer.from(this.#tls.certPem) }],
            true,
          )
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`unix:${address}`, serverCredentials, (error) => (error ? reject(error) : resolve())),
    )
    this.#servers.push(server)
    this.#stream.write({ serviceId: id, network: 'unix', address })
  }

  /** Waits (up to `timeoutMs`) for the plugin to offer service `id`, and says how to reach it. */
  async dial(id: number, timeoutMs = 5000): Promise<BrokerTarget> {
    const info =
      this.#offered.get(id) ??
      (await new Promise<ConnInfo>((resolve, reject) => {
        const timer = setTimeout(() => {
          this.#waiting.delete(id)
          reject(
            new PluginError('unavailable', `the plugin offered no broker service ${id}`, {
              plugin: this.#name,
            }),
          )
        }, timeoutMs)
        this.#waiting.set(id, (received) => {
          clearTimeout(timer)
          resolve(received)
        })
      }))
    this.#offered.delete(id)
    const target = info.network === 'unix' ? `unix:${info.address}` : String(info.address)
    return { target, ...channelSecurity(this.#tls) }
  }

  /** Stops every server offered and ends the stream. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    for (const server of this.#servers) server.forceShutdown()
    this.#stream.cancel()
  }
}

/** Client credentials and channel options for a plain or AutoMTLS connection to a plugin. */
export function channelSecurity(tls: MtlsMaterial | undefined): {
  credentials: ChannelCredentials
  options: Record<string, string | number>
} {
  const options: Record<string, string | number> = {
    'grpc.max_receive_message_length': -1,
    'grpc.max_send_message_length': -1,
  }
  if (tls === undefined) return { credentials: credentials.createInsecure(), options }
  // go-plugin's certificates name localhost; the address is a socket path or an IP.
  options['grpc.ssl_target_name_override'] = 'localhost'
  options['grpc.default_authority'] = 'localhost'
  return {
    credentials: credentials.createSsl(
      Buffer.from(tls.peerCertPem),
      Buffer.from(tls.keyPem),
      Buffer.from(tls.certPem),
    ),
    options,
  }
}
