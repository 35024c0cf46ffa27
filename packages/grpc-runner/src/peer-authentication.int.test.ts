import { corralHandshake, generateCertificate, hostService } from '@corral/proto'
import type { Plugin } from '@corral/types'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startGoPlugin } from './go-plugin-client.js'
import { createGrpcRunner, type GrpcPlugin } from './grpc-runner.js'
import {
  type Approach,
  callHostAs,
  callHostStreamAs,
  callPluginAs,
  observePlugin,
  plainApproaches,
  serverCertificate,
} from './testing/impersonator.js'
import {
  examplePlugin,
  examplesDir,
  fixtureManifest,
  fixturesDir,
  grantFor,
  memoryLogger,
  processExists,
  recordingHost,
} from './testing/support.js'

// Two real plugins run; the test then acts as a third process of the same user that knows only what
// such a process can find: the victim's pid, its environment, the sockets in its folder, and the
// certificates its servers show anyone who connects. With it, it tries to act as the victim.

describe.each([
  { mode: 'AutoMTLS (the default)', autoMtls: true },
  { mode: 'peer secrets (AutoMTLS off)', autoMtls: false },
])('a plugin acting as another, under $mode', ({ autoMtls }) => {
  const host = recordingHost()
  const logs = memoryLogger()
  const runner = createGrpcRunner({ autoMtls, logger: logs.logger })
  let victim: GrpcPlugin
  let other: Plugin

  beforeAll(async () => {
    const { manifest, dir, grant } = await examplePlugin('hello-grpc')
    victim = await runner.load({ manifest, dir, grant, hostApi: host.handler })
    await victim.register()
    await victim.init({})
    const otherManifest = fixtureManifest('other', 'sdk-plugin.mjs', ['well', 'other'])
    other = await runner.load({
      manifest: otherManifest,
      dir: fixturesDir,
      grant: grantFor(otherManifest),
      hostApi: host.handler,
    })
    await other.register()
    await other.init({})
  }, 30_000)
  afterAll(() => runner.close())

  /** Every way the impersonator can try under this mode. */
  async function approaches(target: { path: string }, environ: Record<string, string>): Promise<Approach[]> {
    const plain = plainApproaches(environ)
    if (!autoMtls) return plain
    const own = await generateCertificate()
    return [...plain, { kind: 'tls', own, serverCertPem: await serverCertificate(target, own) }]
  }

  it('cannot make a host call on the victim’s broker socket', async () => {
    const { environ, brokerSocket } = observePlugin(victim.pid as number)
    const before = host.calls.length
    for (const approach of await approaches({ path: brokerSocket }, environ)) {
      expect(await callHostAs(`unix:${brokerSocket}`, approach)).not.toBe('accepted')
      expect(await callHostStreamAs(`unix:${brokerSocket}`, approach)).not.toBe('accepted')
    }
    expect(host.calls.length).toBe(before)
    expect(host.cache.has('stolen')).toBe(false)
    // The victim's own host calls still go through.
    expect(await victim.call('greet', { name: 'Ada' })).toMatchObject({ text: 'Hello, Ada!' })
    expect(host.calls.slice(before).map((c) => [c.method, c.context.plugin])).toEqual([
      ['cache.get', 'hello-grpc'],
      ['cache.set', 'hello-grpc'],
    ])
  })

  it('cannot call the victim’s PluginService or Controller.Shutdown', async () => {
    const pid = victim.pid as number
    const { environ, pluginSocket } = observePlugin(pid)
    for (const approach of await approaches({ path: pluginSocket }, environ)) {
      for (const outcome of await callPluginAs(`unix:${pluginSocket}`, approach)) {
        expect(outcome).not.toBe('accepted')
      }
    }
    expect(processExists(pid)).toBe(true)
    expect(victim.pid).toBe(pid)
    expect(await victim.health()).toMatchObject({ ready: true })
    expect(await other.call('echo', { still: 'serving' })).toEqual({ still: 'serving' })
  })

  it('finds no secret of the victim in its environment', () => {
    const { environ } = observePlugin(victim.pid as number)
    expect(Object.keys(environ).sort()).toEqual(
      [
        'CORRAL_PLUGIN',
        'PLUGIN_PROTOCOL_VERSIONS',
        'PLUGIN_UNIX_SOCKET_DIR',
        'TMPDIR',
        autoMtls ? 'PLUGIN_CLIENT_CERT' : 'CORRAL_PEER_SECRETS',
      ].sort(),
    )
    if (!autoMtls) expect(environ.CORRAL_PEER_SECRETS).toBe('stdin')
  })
})

describe('a plugin whose policy opts out (unauthenticated_transport)', () => {
  const host = recordingHost()
  const logs = memoryLogger()
  const runner = createGrpcRunner({ logger: logs.logger })
  afterAll(() => runner.close())

  it('is reachable by anyone, exactly as the opt-out says, and the decision is logged', async () => {
    const { manifest, dir, grant } = await examplePlugin(
      'hello-grpc',
      {},
      { unauthenticated_transport: true },
    )
    const plugin = await runner.load({ manifest, dir, grant, hostApi: host.handler })
    await plugin.register()
    await plugin.init({})
    expect(logs.entries).toContainEqual(
      expect.objectContaining({
        level: 'warn',
        message: expect.stringContaining('runs without peer authentication'),
      }),
    )
    // The same attack as above, in the clear: here it gets through (which shows it is a real one).
    const { brokerSocket, pluginSocket } = observePlugin(plugin.pid as number)
    expect(await callHostAs(`unix:${brokerSocket}`, { kind: 'plain' })).toBe('accepted')
    expect(await callHostStreamAs(`unix:${brokerSocket}`, { kind: 'plain' })).toBe('accepted')
    expect(await callPluginAs(`unix:${pluginSocket}`, { kind: 'plain' })).toEqual([
      'accepted',
      'accepted',
      'accepted',
    ])
    // It reaches the host's HostService as the plugin; there the host refuses it all the same, as it
    // refuses every host call that belongs to no call of the plugin (an empty token).
    expect(host.calls.some((c) => c.method === 'cache.set')).toBe(false)
  })
})

describe('a broker on TCP (a plugin that chose TCP in its handshake)', () => {
  const logs = memoryLogger()
  const helloGrpc = `${examplesDir}/hello-grpc/dist/main.js`

  it.each([
    { mode: 'in the clear', auth: {}, reachable: true },
    { mode: 'with AutoMTLS', auth: { autoMtls: true }, reachable: false },
    { mode: 'with peer secrets', auth: { peerSecrets: true }, reachable: false },
  ])('is $mode reachable by another local process: $reachable', async ({ auth, reachable }) => {
    const plugin = await startGoPlugin({
      command: process.execPath,
      args: [helloGrpc],
      handshake: corralHandshake,
      env: { CORRAL_PLUGIN_NETWORK: 'tcp' },
      logger: logs.logger,
      ...auth,
    })
    try {
      let served = 0
      const address = await plugin.broker.serve(plugin.broker.nextId(), (server) =>
        server.addService(hostService, {
          call: (_call: unknown, done: (error: null, response: object) => void) => {
            served += 1
            done(null, {})
          },
        }),
      )
      expect(address.network).toBe('tcp')
      const port = Number(address.address.split(':').at(-1))
      const own = await generateCertificate()
      const tried: Approach[] =
        'autoMtls' in auth
          ? [{ kind: 'tls', own, serverCertPem: await serverCertificate({ port }, own) }, { kind: 'plain' }]
          : plainApproaches({ guess: 'x' })
      const outcomes = await Promise.all(tried.map((approach) => callHostAs(address.address, approach)))
      expect(outcomes.includes('accepted')).toBe(reachable)
      expect(served > 0).toBe(reachable)
      // The control: the same call with the plugin's own secret gets through (the guesses above
      // were refused for what they carried, not for how they were sent).
      const secret = plugin.reattachConfig.secrets?.plugin
      if (secret !== undefined) {
        expect(await callHostAs(address.address, { kind: 'plain', secret })).toBe('accepted')
      }
    } finally {
      await plugin.stop()
    }
  })
})
