import { randomBytes } from 'node:crypto'
import { lchownSync } from 'node:fs'
import { isIP } from 'node:net'
import { join } from 'node:path'
import {
  bidi,
  brokerService,
  type ConnInfo,
  channelSecurity,
  type MtlsMaterial,
  type PeerSecrets,
  requirePeerSecret,
  sendPeerSecret,
  serverOptions,
  serverSecurity,
} from '@corral/proto'
import { PluginError } from '@corral/types'
import type { ChannelCredentials, Client, ClientDuplexStream, ClientOptions } from '@grpc/grpc-js'
import { Server } from '@grpc/grpc-js'
import { describeUser, type PluginUser } from './plugin-user.js'

/** How long `dial` waits for the plugin to offer a service, unless told. */
const defaultDialTimeoutMs = 5000

/**
 * How many calls one connection of the plugin may have open at once on a server the host offers it
 * (each unary call is a stream, and a call stream is one): it bounds what a plugin that opens calls
 * without end, or reads none of their answers, makes the host hold. More wait for their turn.
 */
export const maxStreamsPerConnection = 256

/**
 * Where the host's broker listens: unix sockets in a private folder for a plugin on this machine
 * (handed to `owner`, a plugin's user of its own, where it has one: the folder must be the host's,
 * one the plugin cannot write in), TCP on `host` (an address of this host the plugin can reach;
 * bound as given) for a plugin reached over TCP, such as one running as its own service elsewhere.
 */
export type BrokerListen =
  | { network: 'unix'; socketDir: string; owner?: PluginUser }
  | { network: 'tcp'; host: string }

/** The address of a service the host offers over the broker, as the plugin is told it. */
export interface BrokerAddress {
  network: 'unix' | 'tcp'
  address: string
}

/** Where to reach a service the plugin offers over the broker. */
export interface BrokerTarget {
  target: string
  credentials: ChannelCredentials
  /** Channel options, and the interceptor that sends the host's peer secret where there is one. */
  options: ClientOptions
}

/**
 * The host's side of go-plugin's connection broker (`plugin.GRPCBroker/StartStream`), both ways:
 * {@link GrpcBroker.serve} offers a host service to the plugin under an id, {@link GrpcBroker.dial}
 * reaches a service the plugin offers.
 */
export class GrpcBroker {
  readonly #stream: ClientDuplexStream<ConnInfo, ConnInfo>
  readonly #listen: BrokerListen
  readonly #tls: MtlsMaterial | undefined
  readonly #secrets: PeerSecrets | undefined
  readonly #name: string
  readonly #offered = new Map<number, ConnInfo>()
  readonly #waiting = new Map<number, (info: ConnInfo) => void>()
  readonly #servers: Server[] = []
  #nextId = 0
  #closed = false

  /**
   * @internal Opened by the go-plugin client once connected. With `tls`, only the plugin's
   * certificate is accepted on the services offered; with `secrets`, only calls that carry the
   * plugin's secret reach them, and the host's is sent to the services the plugin offers.
   */
  constructor(
    client: Client,
    options: { listen: BrokerListen; tls?: MtlsMaterial; secrets?: PeerSecrets; name: string },
  ) {
    if (options.listen.network === 'tcp' && options.tls === undefined && !isLoopback(options.listen.host)) {
      throw new PluginError(
        'invalid_argument',
        `a broker listening on ${options.listen.host} needs mutual TLS: without it anyone who reaches the address could call the host`,
        { plugin: options.name },
      )
    }
    this.#listen = options.listen
    this.#tls = options.tls
    this.#secrets = options.secrets
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
   * Serves a gRPC server (filled by `addServices`) on a fresh unix socket, or a fresh TCP port where
   * the plugin is reached over TCP (with the connection's mutual TLS), and tells the plugin its
   * address under `id`; the plugin dials it with its broker. Returns what the plugin was told.
   * `maxReceiveBytes` bounds each message the server takes from the plugin (refused before it is read whole).
   */
  async serve(
    id: number,
    addServices: (server: Server) => void,
    maxReceiveBytes = -1,
  ): Promise<BrokerAddress> {
    if (this.#closed) throw new PluginError('unavailable', 'the broker is closed', { plugin: this.#name })
    // Whoever can reach the socket is not thereby the plugin: every call must carry its secret.
    const secrets = this.#secrets
    const options = {
      ...serverOptions,
      'grpc.max_receive_message_length': maxReceiveBytes,
      'grpc.max_concurrent_streams': maxStreamsPerConnection,
    }
    const server = new Server(
      secrets === undefined ? options : { ...options, interceptors: [requirePeerSecret(secrets.plugin)] },
    )
    addServices(server)
    const listen = this.#listen
    const bindTo =
      listen.network === 'unix'
        ? `unix:${join(listen.socketDir, `broker-${id}-${randomBytes(4).toString('hex')}.sock`)}`
        : hostPort(listen.host, 0)
    let port: number
    try {
      port = await new Promise<number>((resolve, reject) =>
        server.bindAsync(bindTo, serverSecurity(this.#tls), (error, bound) =>
          error ? reject(error) : resolve(bound),
        ),
      )
    } catch (error) {
      server.forceShutdown()
      throw new PluginError(
        'unavailable',
        `the broker cannot listen on ${bindTo}: ${(error as Error).message}`,
        {
          plugin: this.#name,
          cause: error,
        },
      )
    }
    if (listen.network === 'unix' && listen.owner !== undefined) {
      // Connecting takes write permission on the socket: the plugin's user gets it, no one else.
      const path = bindTo.slice('unix:'.length)
      try {
        lchownSync(path, listen.owner.uid, listen.owner.gid)
      } catch (error) {
        server.forceShutdown()
        throw new PluginError(
          'unavailable',
          `the broker cannot hand ${path} to ${describeUser(listen.owner)}: ${(error as Error).message}`,
          { plugin: this.#name, cause: error },
        )
      }
    }
    this.#servers.push(server)
    const offered: BrokerAddress =
      listen.network === 'unix'
        ? { network: 'unix', address: bindTo.slice('unix:'.length) }
        : { network: 'tcp', address: hostPort(listen.host, port) }
    this.#stream.write({ serviceId: id, ...offered })
    return offered
  }

  /** Waits (up to `timeoutMs`) for the plugin to offer service `id`, and says how to reach it. */
  async dial(id: number, timeoutMs = defaultDialTimeoutMs): Promise<BrokerTarget> {
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
    const { credentials, options } = channelSecurity(this.#tls)
    const secrets = this.#secrets
    return {
      target,
      credentials,
      options: secrets === undefined ? options : { ...options, interceptors: [sendPeerSecret(secrets.host)] },
    }
  }

  /** Stops every server offered and ends the stream. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    for (const server of this.#servers) server.forceShutdown()
    this.#stream.cancel()
  }
}

function hostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'))
}
