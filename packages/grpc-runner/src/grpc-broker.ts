import { randomBytes } from 'node:crypto'
import { lchownSync } from 'node:fs'
import { createServer, isIP, type Socket } from 'node:net'
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
import { Server, ServerInterceptingCall, type ServerInterceptor, status } from '@grpc/grpc-js'
import { describeUser, type PluginUser } from './plugin-user.js'

/** How long `dial` waits for the plugin to offer a service, unless told. */
const defaultDialTimeoutMs = 5000

/**
 * How many calls one connection of the plugin may have open at once on a server the host offers it
 * (each unary call is a stream, and a call stream is one), and how many connections it may have
 * open: grpc-js reads and parses what comes on each stream before the host sees it, so these bound
 * what a plugin can make the host hold. More calls wait for their turn; more connections are closed.
 */
export const maxStreamsPerConnection = 32
export const maxConnectionsPerServer = 4

/**
 * The host takes no compressed message from a plugin: grpc-js inflates each one as it arrives, before
 * the host can count it, and a message of 2 KiB inflates to `max_host_call_bytes`. grpc-js has no
 * option for it, so this interceptor, the first, next to grpc-js's own call, makes that call refuse a
 * compressed message where it would inflate it (`decompressMessage`, grpc-js 1.14). The gzip test
 * (`host-call-streams-gzip.int.test.ts`) fails if a grpc-js release stops calling it.
 */
const refuseCompressedMessages: ServerInterceptor = (_method, call) => {
  const own = call as unknown as { decompressMessage?: (message: Buffer, encoding: string) => unknown }
  const inflate = own.decompressMessage?.bind(call)
  if (inflate !== undefined) {
    own.decompressMessage = (message, encoding) =>
      encoding === 'identity'
        ? inflate(message, encoding)
        : Promise.reject({ code: status.UNIMPLEMENTED, details: 'the host takes no compressed message' })
  }
  return new ServerInterceptingCall(call)
}

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
  /** What stops each server offered. */
  readonly #servers: Array<() => void> = []
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
    const server = new Server({
      ...options,
      interceptors: [
        refuseCompressedMessages,
        ...(secrets === undefined ? [] : [requirePeerSecret(secrets.plugin)]),
      ],
    })
    addServices(server)
    const listen = this.#listen
    const where: { path: string } | { host: string; port: number } =
      listen.network === 'unix'
        ? { path: join(listen.socketDir, `broker-${id}-${randomBytes(4).toString('hex')}.sock`) }
        : { host: listen.host, port: 0 }
    // The host accepts connections itself and hands them to the gRPC server: it counts them.
    const injector = server.createConnectionInjector(serverSecurity(this.#tls))
    const connections = new Set<Socket>()
    const listener = createServer((socket) => {
      if (connections.size >= maxConnectionsPerServer) {
        socket.destroy()
        return
      }
      connections.add(socket)
      socket.once('close', () => connections.delete(socket))
      injector.injectConnection(socket)
    })
    const stop = () => {
      listener.close()
      injector.destroy()
      server.forceShutdown()
    }
    let port = 0
    try {
      await new Promise<void>((resolve, reject) => {
        listener.once('error', reject)
        listener.listen(where, resolve)
      })
      // Once listening, an accept that fails (no descriptors left) fails that connection only.
      listener.on('error', () => {})
      const address = listener.address()
      if (address !== null && typeof address === 'object') port = address.port
    } catch (error) {
      stop()
      throw new PluginError(
        'unavailable',
        `the broker cannot listen on ${'path' in where ? where.path : hostPort(where.host, 0)}: ${(error as Error).message}`,
        { plugin: this.#name, cause: error },
      )
    }
    if ('path' in where && listen.network === 'unix' && listen.owner !== undefined) {
      // Connecting takes write permission on the socket: the plugin's user gets it, no one else.
      const { path } = where
      try {
        lchownSync(path, listen.owner.uid, listen.owner.gid)
      } catch (error) {
        stop()
        throw new PluginError(
          'unavailable',
          `the broker cannot hand ${path} to ${describeUser(listen.owner)}: ${(error as Error).message}`,
          { plugin: this.#name, cause: error },
        )
      }
    }
    this.#servers.push(stop)
    const offered: BrokerAddress =
      'path' in where
        ? { network: 'unix', address: where.path }
        : { network: 'tcp', address: hostPort(where.host, port) }
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
    for (const stop of this.#servers) stop()
    this.#stream.cancel()
  }
}

function hostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'))
}
