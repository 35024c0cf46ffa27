import { type ChildProcess, spawn } from 'node:child_process'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import {
  type CertificatePair,
  channelSecurity,
  corralHandshake,
  generateCertificate,
  hostService,
  parseHandshakeLine,
  unary,
} from '@corral/proto'
import { isPluginError, PluginError } from '@corral/types'
import { Client } from '@grpc/grpc-js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { reattachGoPlugin } from './go-plugin-client.js'
import { createGrpcRunner } from './grpc-runner.js'
import type { ReattachTarget } from './plugin-launch.js'
import {
  examplePlugin,
  examplesDir,
  memoryLogger,
  nextState,
  processExists,
  recordingHost,
} from './testing/support.js'

const helloGrpc = join(examplesDir, 'hello-grpc/dist/main.js')

/**
 * hello-grpc started the way a deployment starts a go-plugin plugin as a service of its own: the
 * magic cookie, TCP, and the certificate of the host allowed to connect; its handshake line says
 * where it listens and with which certificate. No host process owns it.
 */
async function startService(host: CertificatePair): Promise<{ child: ChildProcess; target: ReattachTarget }> {
  const child = spawn(process.execPath, [helloGrpc], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      [corralHandshake.magicCookieKey]: corralHandshake.magicCookieValue,
      PLUGIN_PROTOCOL_VERSIONS: String(corralHandshake.protocolVersion),
      CORRAL_PLUGIN_NETWORK: 'tcp',
      PLUGIN_CLIENT_CERT: host.certPem,
    },
  })
  child.stderr?.resume()
  const line = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })
    lines.once('line', (first) => {
      lines.close()
      child.stdout?.resume()
      resolve(first)
    })
    child.once('exit', (code) => reject(new Error(`the service exited with ${code}`)))
  })
  const handshake = parseHandshakeLine(line, [corralHandshake.protocolVersion], 'hello-grpc')
  return {
    child,
    target: {
      network: handshake.network,
      address: handshake.address,
      pid: child.pid as number,
      protocolVersion: handshake.appVersion,
      tls: { peerCertPem: handshake.serverCertPem ?? '', ...host },
    },
  }
}

describe('createGrpcRunner({ reattach }): a plugin that runs as its own service, over TCP with mutual TLS', () => {
  const { logger } = memoryLogger()
  let service: { child: ChildProcess; target: ReattachTarget }

  beforeAll(async () => {
    service = await startService(await generateCertificate())
  })
  afterAll(() => {
    service?.child.kill('SIGKILL')
  })

  it('loads it without starting a process: calls, and host calls back over a TCP broker', async () => {
    expect(service.target.address).toMatch(/^127\.0\.0\.1:\d+$/)
    const host = recordingHost()
    const runner = createGrpcRunner({
      hostVersion: '0.1.0',
      logger,
      reattach: { 'hello-grpc': service.target },
    })
    try {
      const { manifest, dir, grant } = await examplePlugin('hello-grpc')
      const plugin = await runner.load({ manifest, dir, grant, hostApi: host.handler })
      expect(plugin.reattached).toBe(true)
      expect(plugin.pid).toBe(service.child.pid)
      expect((await plugin.register()).name).toBe('hello-grpc')
      await plugin.init({ greeting: 'Hey' })
      expect(await plugin.call('greet', { name: 'Remote' }, { token: 'req-7' })).toEqual({
        text: 'Hey, Remote!',
        count: 1,
      })
      expect(host.calls.map((c) => c.method)).toEqual(['db.exec', 'cache.get', 'cache.set'])
      expect(host.calls.at(-1)?.context).toMatchObject({ plugin: 'hello-grpc', token: 'req-7' })
    } finally {
      await runner.close()
    }
    // Not the runner's to stop: the service goes on serving.
    expect(processExists(service.child.pid as number)).toBe(true)
  })

  it('lets another host reattach after the first let go, with its own broker', async () => {
    const host = recordingHost()
    const runner = createGrpcRunner({ logger, reattach: { 'hello-grpc': service.target } })
    try {
      const { manifest, dir, grant } = await examplePlugin('hello-grpc')
      const plugin = await runner.load({ manifest, dir, grant, hostApi: host.handler })
      await plugin.register()
      await plugin.init({})
      expect(await plugin.call('greet', { name: 'Again' })).toEqual({ text: 'Hello, Again!', count: 1 })
      expect(host.calls.map((c) => c.method)).toEqual(['db.exec', 'cache.get', 'cache.set'])
    } finally {
      await runner.close()
    }
  })

  it('refuses to load with a client certificate the service does not trust', async () => {
    const stranger = await generateCertificate()
    const runner = createGrpcRunner({
      logger,
      reattach: {
        'hello-grpc': {
          ...service.target,
          tls: { peerCertPem: service.target.tls?.peerCertPem ?? '', ...stranger },
        },
      },
    })
    const { manifest, dir, grant } = await examplePlugin('hello-grpc', { init_timeout: 1500 })
    const error = await runner
      .load({ manifest, dir, grant, hostApi: recordingHost().handler })
      .catch((e: unknown) => e)
    expect(isPluginError(error) && error.code).toBe('load_failed')
    await runner.close()
  })

  it('refuses another protocol version with incompatible', async () => {
    const runner = createGrpcRunner({
      logger,
      reattach: { 'hello-grpc': { ...service.target, protocolVersion: 2 } },
    })
    const { manifest, dir, grant } = await examplePlugin('hello-grpc')
    const error = await runner
      .load({ manifest, dir, grant, hostApi: recordingHost().handler })
      .catch((e: unknown) => e)
    expect(isPluginError(error) && error.code).toBe('incompatible')
    await runner.close()
  })

  it('serves the broker on TCP with mutual TLS: a client without the plugin’s certificate is refused', async () => {
    const client = await reattachGoPlugin({ ...service.target, logger })
    try {
      let served = 0
      const offered = await client.broker.serve(client.broker.nextId(), (server) =>
        server.addService(hostService, {
          call: (_call: unknown, callback: (error: null, value: object) => void) => {
            served += 1
            callback(null, {})
          },
        }),
      )
      expect(offered.network).toBe('tcp')
      expect(offered.address).toMatch(/^127\.0\.0\.1:\d+$/)
      const attempts = [
        // Trusts the host, but presents a certificate of its own making.
        channelSecurity({ peerCertPem: service.target.tls?.certPem ?? '', ...(await generateCertificate()) }),
        // No TLS at all.
        channelSecurity(undefined),
      ]
      for (const { credentials, options } of attempts) {
        const stranger = new Client(offered.address, credentials, options)
        const refused = await unary(
          stranger,
          hostService.call,
          { method: 'log' },
          { deadline: Date.now() + 2000 },
        )
          .then(() => undefined)
          .catch((e: unknown) => e)
        stranger.close()
        expect(refused).toBeInstanceOf(Error)
      }
      expect(served).toBe(0)
    } finally {
      await client.disconnect()
    }
    expect(processExists(service.child.pid as number)).toBe(true)
  })

  it('notices the service is gone: calls fail with unavailable and the runner tries to reattach', async () => {
    const own = await startService(await generateCertificate())
    const runner = createGrpcRunner({
      logger,
      reattach: { 'hello-grpc': own.target },
      restart: { initialBackoffMs: 50, maxRestarts: 1 },
    })
    try {
      const { manifest, dir, grant } = await examplePlugin('hello-grpc')
      const plugin = await runner.load({
        manifest,
        dir,
        grant,
        hostApi: recordingHost().handler,
      })
      await plugin.register()
      await plugin.init({})
      const quarantined = nextState(plugin, 'quarantined')
      own.child.kill('SIGKILL')
      await quarantined
      const error = await plugin.call('echo', 1).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(PluginError)
      expect(isPluginError(error) && error.code).toBe('unavailable')
    } finally {
      own.child.kill('SIGKILL')
      await runner.close()
    }
  })
})
