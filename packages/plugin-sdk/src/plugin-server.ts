import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  type MtlsMaterial,
  type PeerSecrets,
  requirePeerSecret,
  serverOptions,
  serverSecurity,
} from '@corral/proto'
import { Server } from '@grpc/grpc-js'

/** How long a stopping server lets its calls finish before it drops them. */
const stopGraceMs = 2000

/**
 * The plugin's gRPC server. With TLS only the host's certificate gets in (see {@link listen});
 * without it, every call must carry the host's secret: another process that finds the socket is
 * not the host.
 */
export function createPluginServer(secrets: PeerSecrets | undefined): Server {
  return new Server(
    secrets === undefined
      ? serverOptions
      : { ...serverOptions, interceptors: [requirePeerSecret(secrets.host)] },
  )
}

/**
 * Binds `server` the way go-plugin's host expects: a fresh unix socket in `PLUGIN_UNIX_SOCKET_DIR`,
 * or a TCP port on 127.0.0.1 within `PLUGIN_MIN_PORT`–`PLUGIN_MAX_PORT` (any port without a range).
 * Returns the address for the handshake line.
 */
export async function listen(
  server: Server,
  network: 'unix' | 'tcp',
  tls: MtlsMaterial | undefined,
): Promise<string> {
  return network === 'tcp' ? await bindTcp(server, tls) : await bindUnix(server, tls)
}

/** Stops serving: running calls get {@link stopGraceMs} to finish, then are dropped. */
export function stopServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    const force = setTimeout(() => {
      server.forceShutdown()
      resolve()
    }, stopGraceMs)
    server.tryShutdown(() => {
      clearTimeout(force)
      resolve()
    })
  })
}

function bind(server: Server, address: string, tls: MtlsMaterial | undefined): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync(address, serverSecurity(tls), (error, port) => (error ? reject(error) : resolve(port))),
  )
}

async function bindUnix(server: Server, tls: MtlsMaterial | undefined): Promise<string> {
  const dir = process.env.PLUGIN_UNIX_SOCKET_DIR || tmpdir()
  const path = join(dir, `plugin${process.pid}-${randomBytes(4).toString('hex')}.sock`)
  await bind(server, `unix:${path}`, tls)
  return path
}

async function bindTcp(server: Server, tls: MtlsMaterial | undefined): Promise<string> {
  const min = Number(process.env.PLUGIN_MIN_PORT || 0)
  const max = Number(process.env.PLUGIN_MAX_PORT || 0)
  if (min === 0 && max === 0) return `127.0.0.1:${await bind(server, '127.0.0.1:0', tls)}`
  for (let port = min; port <= max; port++) {
    try {
      return `127.0.0.1:${await bind(server, `127.0.0.1:${port}`, tls)}`
    } catch {
      // Taken: try the next one.
    }
  }
  throw new Error(`no free port between ${min} and ${max}`)
}
