import { isPluginError } from '@corral/types'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createGrpcRunner, type GrpcPlugin } from './grpc-runner.js'
import {
  eventually,
  examplePlugin,
  goKvPolicy,
  memoryLogger,
  processExists,
  recordingHost,
} from './testing/support.js'

describe('createGrpcRunner with the go-kv example (Go, hashicorp/go-plugin 1.0.1, unary calls)', () => {
  const host = recordingHost()
  const logs = memoryLogger()
  const runner = createGrpcRunner({ hostVersion: '0.1.0', logger: logs.logger })
  let plugin: GrpcPlugin

  beforeAll(async () => {
    const { manifest, dir, grant } = await examplePlugin('go-kv', {}, goKvPolicy)
    plugin = await runner.load({ manifest, dir, grant, hostApi: host.handler })
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

  it('keeps the plugin’s error codes and the host’s refusals', async () => {
    const bad = await plugin.call('get', {}).catch((e: unknown) => e)
    expect(isPluginError(bad) && bad.code).toBe('go-kv:bad_key')
    const missing = await plugin.call('nope', { key: 'a' }).catch((e: unknown) => e)
    expect(isPluginError(missing) && missing.code).toBe('unimplemented')
  })

  it('shuts down through the controller, leaving no process', async () => {
    const pid = plugin.pid as number
    await plugin.shutdown()
    await eventually(() => !processExists(pid), 5000, 'go-kv to exit')
  })
})
