import { generateCertificate } from '@corral/proto'
import type { HostCallHandler } from '@corral/types'
import { isPluginError, PluginError } from '@corral/types'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createGrpcRunner, type GrpcPlugin } from './grpc-runner.js'
import {
  type Approach,
  callPluginAs,
  observePlugin,
  plainApproaches,
  serverCertificate,
} from './testing/impersonator.js'
import {
  eventually,
  examplePlugin,
  memoryLogger,
  processExists,
  recordingHost,
  type TestPolicy,
} from './testing/support.js'

describe.each<{ transport: string; autoMtls: boolean; policy: TestPolicy }>([
  { transport: 'AutoMTLS (the default)', autoMtls: true, policy: {} },
  { transport: 'peer secrets (AutoMTLS off)', autoMtls: false, policy: {} },
  {
    transport: 'no peer authentication (unauthenticated_transport)',
    autoMtls: true,
    policy: { unauthenticated_transport: true },
  },
])(
  'createGrpcRunner with the go-kv example (Go SDK on go-plugin 1.0.1, calls over the call stream), $transport',
  ({ autoMtls, policy }) => {
    const host = recordingHost()
    // The host refuses one key, as a policy would: the refusal must reach go-kv as a Go error with its code.
    const handler: HostCallHandler = (method, args, context) =>
      (args as { key?: string }).key === 'kv:secret'
        ? Promise.reject(new PluginError('permission_denied', 'kv:secret is not granted'))
        : host.handler(method, args, context)
    const logs = memoryLogger()
    const runner = createGrpcRunner({ hostVersion: '0.1.0', autoMtls, logger: logs.logger })
    let plugin: GrpcPlugin

    beforeAll(async () => {
      const { manifest, dir, grant } = await examplePlugin('go-kv', {}, policy)
      plugin = await runner.load({ manifest, dir, grant, hostApi: handler })
    })
    afterAll(() => runner.close())

    it('registers and initialises, dialling the host service over the broker', async () => {
      const registration = await plugin.register()
      expect(registration).toMatchObject({ name: 'go-kv', version: '0.1.0' })
      await plugin.init({})
      expect(await plugin.health()).toMatchObject({ ready: true })
    })

    it('parses its hclog stderr lines into the host logger, level and fields', async () => {
      await eventually(() => logs.entries.some((e) => e.message === 'initialised'), 5000, 'the init log line')
      const line = logs.entries.find((e) => e.message === 'initialised')
      expect(line).toMatchObject({ level: 'info', fields: { plugin: 'go-kv', module: 'go-kv' } })
    })

    it('stores and reads values through host calls that carry the call token', async () => {
      expect(await plugin.call('set', { key: 'a', value: 'one' }, { token: 'kv-1' })).toEqual({ ok: true })
      expect(host.cache.get('kv:a')).toBe(Buffer.from('one').toString('base64'))
      expect(await plugin.call('get', { key: 'a' }, { token: 'kv-2' })).toEqual({ key: 'a', value: 'one' })
      expect(host.calls.filter((c) => c.method.startsWith('cache.')).map((c) => c.context.token)).toEqual([
        'kv-1',
        'kv-2',
      ])
      expect(await plugin.call('delete', { key: 'a' })).toEqual({ deleted: true })
      expect(await plugin.call('get', { key: 'a' })).toEqual({ key: 'a', value: null })
    })

    it('keeps the plugin’s error codes, prefixed with its name, and the host’s refusals', async () => {
      const bad = await plugin.call('get', {}).catch((e: unknown) => e)
      expect(isPluginError(bad) && bad.code).toBe('go-kv:bad_key')
      const missing = await plugin.call('nope', { key: 'a' }).catch((e: unknown) => e)
      expect(isPluginError(missing) && missing.code).toBe('unimplemented')
      const notJson = await plugin.call('get', { key: 7 }).catch((e: unknown) => e)
      expect(isPluginError(notJson) && notJson.code).toBe('invalid_argument')
      const refused = await plugin.call('set', { key: 'secret', value: 'v' }).catch((e: unknown) => e)
      expect(isPluginError(refused) && [refused.code, refused.rawMessage]).toEqual([
        'permission_denied',
        'kv:secret is not granted',
      ])
    })

    it('reports its last failure in health', async () => {
      const health = await plugin.health()
      expect(health.last_error).toMatchObject({ code: 'permission_denied' })
    })

    it('shuts down through the controller, leaving no process', async () => {
      const pid = plugin.pid as number
      await plugin.shutdown()
      await eventually(() => !processExists(pid), 5000, 'go-kv to exit')
    })
  },
)

/** Loads go-kv, initialised, in the enclosing describe block, by a runner of its own; the plugin. */
function goKvLoaded(options: { autoMtls: boolean }): () => GrpcPlugin {
  const runner = createGrpcRunner({ hostVersion: '0.1.0', ...options, logger: memoryLogger().logger })
  let plugin: GrpcPlugin | undefined
  beforeAll(async () => {
    const { manifest, dir, grant } = await examplePlugin('go-kv')
    plugin = await runner.load({ manifest, dir, grant, hostApi: recordingHost().handler })
    await plugin.register()
    await plugin.init({})
  })
  afterAll(() => runner.close())
  return () => plugin as GrpcPlugin
}

describe('the go-kv example under peer secrets, called by a process without them', () => {
  const loaded = goKvLoaded({ autoMtls: false })

  it('refuses every call into the plugin that lacks the host’s secret, and still serves the host', async () => {
    const plugin = loaded()
    const { environ, pluginSocket } = observePlugin(plugin.pid as number)
    expect(environ.CORRAL_PEER_SECRETS).toBe('stdin')
    for (const approach of plainApproaches(environ)) {
      for (const outcome of await callPluginAs(`unix:${pluginSocket}`, approach)) {
        expect(outcome).toMatch(/UNAUTHENTICATED|peer secret/)
      }
    }
    expect(await plugin.call('set', { key: 'a', value: 'one' })).toEqual({ ok: true })
  })
})

describe('the go-kv example under AutoMTLS, called by a process without the host’s certificate', () => {
  const loaded = goKvLoaded({ autoMtls: true })

  it('refuses every call into the plugin without the host’s client certificate, and still serves the host', async () => {
    const plugin = loaded()
    const { environ, pluginSocket } = observePlugin(plugin.pid as number)
    expect(environ.PLUGIN_CLIENT_CERT).toContain('BEGIN CERTIFICATE')
    const own = await generateCertificate()
    const approaches: Approach[] = [
      ...plainApproaches(environ),
      { kind: 'tls', own, serverCertPem: await serverCertificate({ path: pluginSocket }, own) },
    ]
    for (const approach of approaches) {
      for (const outcome of await callPluginAs(`unix:${pluginSocket}`, approach)) {
        expect(outcome).not.toBe('accepted')
      }
    }
    expect(await plugin.call('set', { key: 'a', value: 'one' })).toEqual({ ok: true })
  })
})
