import { randomBytes } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { connect } from 'node:tls'
import {
  type CertificatePair,
  channelSecurity,
  controllerService,
  deadlineIn,
  hostService,
  pluginService,
  unary,
} from '@corral/proto'
import { Client, type ClientOptions, credentials, Metadata } from '@grpc/grpc-js'

/**
 * What another process of the host's user can learn about a running plugin without being told:
 * its environment (`/proc/<pid>/environ`) and, from the socket folder named there, its sockets.
 */
export function observePlugin(pid: number) {
  const environ = Object.fromEntries(
    readFileSync(`/proc/${pid}/environ`, 'utf8')
      .split('\0')
      .filter((entry) => entry.includes('='))
      .map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]),
  ) as Record<string, string>
  const dir = environ.PLUGIN_UNIX_SOCKET_DIR as string
  const sockets = readdirSync(dir).map((name) => join(dir, name))
  const pluginSocket = sockets.find((path) => /\/plugin\d+(-|$)/.test(path))
  const brokerSocket = sockets.find((path) => /\/broker-/.test(path))
  if (pluginSocket === undefined || brokerSocket === undefined) {
    throw new Error(`no plugin and broker socket in ${dir}: ${sockets.join(', ')}`)
  }
  return { environ, pluginSocket, brokerSocket }
}

/** The certificate a TLS server at `address` presents, as PEM: anyone may connect and look. */
export function serverCertificate(address: { path: string } | { port: number }, own: CertificatePair) {
  return new Promise<string>((resolve, reject) => {
    const socket = connect({
      ...('path' in address ? { path: address.path } : { host: '127.0.0.1', port: address.port }),
      rejectUnauthorized: false,
      key: own.keyPem,
      cert: own.certPem,
    })
    socket.once('secureConnect', () => {
      const raw = socket.getPeerCertificate().raw
      socket.destroy()
      resolve(`-----BEGIN CERTIFICATE-----\n${raw.toString('base64')}\n-----END CERTIFICATE-----\n`)
    })
    socket.once('error', reject)
  })
}

/** How an impersonator connects: in the clear (with or without a secret it guessed) or over TLS. */
export type Approach =
  | { kind: 'plain'; secret?: string }
  | { kind: 'tls'; own: CertificatePair; serverCertPem: string }

function client(target: string, approach: Approach): Client {
  if (approach.kind === 'plain') {
    const { secret } = approach
    // Metadata under the name the host reads; built here, not with the library's own helper.
    const options: ClientOptions =
      secret === undefined
        ? {}
        : {
            callInvocationTransformer: (properties) => {
              const metadata = new Metadata()
              metadata.merge(properties.metadata)
              metadata.set('corral-peer-secret', secret)
              return { ...properties, metadata }
            },
          }
    return new Client(target, credentials.createInsecure(), options)
  }
  const security = channelSecurity({ peerCertPem: approach.serverCertPem, ...approach.own })
  return new Client(target, security.credentials, security.options)
}

/** The approaches in the clear: no secret, a secret of its own, and every value of the victim's environment. */
export function plainApproaches(environ: Record<string, string>): Approach[] {
  return [
    { kind: 'plain' },
    { kind: 'plain', secret: randomBytes(32).toString('base64url') },
    ...Object.values(environ).map((value): Approach => ({ kind: 'plain', secret: value })),
  ]
}

/** A host call made as the victim on its broker socket: what came back, or the transport error. */
export async function callHostAs(target: string, approach: Approach): Promise<'accepted' | string> {
  const rpc = client(target, approach)
  try {
    await unary(
      rpc,
      hostService.call,
      {
        method: 'cache.set',
        argsJson: Buffer.from(JSON.stringify({ key: 'stolen', value: 'aGk=' })),
        token: '',
      },
      { deadline: deadlineIn(2000) },
    )
    return 'accepted'
  } catch (error) {
    return String((error as Error).message)
  } finally {
    rpc.close()
  }
}

/** Opens a bidi stream of `method`, writes `message`, and settles with its first answer or error. */
function firstAnswer<Request>(
  rpc: Client,
  method: {
    path: string
    requestSerialize(value: Request): Buffer
    responseDeserialize(bytes: Buffer): unknown
  },
  message: Request,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const stream = rpc.makeBidiStreamRequest(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      new Metadata(),
      { deadline: deadlineIn(2000) },
    )
    stream.on('data', (answer) => {
      resolve(answer)
      stream.cancel()
    })
    stream.on('error', reject)
    stream.write(message)
  })
}

/** The same host call as {@link callHostAs}, on `HostService/CallStream`. */
export async function callHostStreamAs(target: string, approach: Approach): Promise<'accepted' | string> {
  const rpc = client(target, approach)
  try {
    await firstAnswer(rpc, hostService.callStream, {
      id: 1,
      method: 'cache.set',
      argsJson: Buffer.from(JSON.stringify({ key: 'stolen', value: 'aGk=' })),
      token: '',
    })
    return 'accepted'
  } catch (error) {
    return String((error as Error).message)
  } finally {
    rpc.close()
  }
}

/** `PluginService.Call`, `PluginService.CallStream` and `GRPCController/Shutdown` on the victim's own socket. */
export async function callPluginAs(target: string, approach: Approach): Promise<Array<'accepted' | string>> {
  const rpc = client(target, approach)
  const attempt = async (work: () => Promise<unknown>) => {
    try {
      await work()
      return 'accepted' as const
    } catch (error) {
      return String((error as Error).message)
    }
  }
  try {
    const call = await attempt(() =>
      unary(
        rpc,
        pluginService.call,
        { function: 'echo', argsJson: Buffer.from('{}'), timeoutMs: 1000, token: '' },
        { deadline: deadlineIn(2000) },
      ),
    )
    const stream = await attempt(() =>
      firstAnswer(rpc, pluginService.callStream, {
        requests: [{ id: 1, function: 'echo', argsJson: Buffer.from('{}'), timeoutMs: 1000, token: '' }],
      }),
    )
    const shutdown = await attempt(() =>
      unary(rpc, controllerService.shutdown, {}, { deadline: deadlineIn(2000) }),
    )
    return [call, stream, shutdown]
  } finally {
    rpc.close()
  }
}
