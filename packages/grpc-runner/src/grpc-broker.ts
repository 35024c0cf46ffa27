import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import {
  bidi,
  brokerService,
  type ConnInfo,
  channelSecurity,
  type MtlsMaterial,
  serverOptions,
  serverSecurity,
} from '@corral/proto'
import { PluginError } from '@corral/types'
import type { ChannelCredentials, Client, ClientDuplexStream } from '@grpc/grpc-js'
import { Server } from '@grpc/grpc-js'

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
    const server = new Server(serverOptions)
    addServices(server)
    const address = join(this.#socketDir, `broker-${id}-${randomBytes(4).toString('hex')}.sock`)
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`unix:${address}`, serverSecurity(this.#tls), (error) =>
        error ? reject(error) : resolve(),
      ),
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
