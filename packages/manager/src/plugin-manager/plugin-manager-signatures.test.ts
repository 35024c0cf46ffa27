import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type Backends, createBackends } from '../backends/create-backends.js'
import { FakeRunner } from '../testing/fake-runner.js'
import type { PluginManager } from './manager-api.js'
import { createPluginManager } from './plugin-manager.js'
import { generateSigningKeyPair, signPluginPackage } from './signatures/plugin-signature.js'

function failure(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  return promise.then(
    () => {
      throw new Error('expected a failure')
    },
    (error) => error,
  )
}

describe('createPluginManager with signatures required (fake runners)', () => {
  const keys = generateSigningKeyPair()
  const stranger = generateSigningKeyPair()
  let pluginsDir: string
  let backends: Backends
  let runner: FakeRunner
  let manager: PluginManager | undefined

  async function writePlugin(folder: string, version = '1.0.0'): Promise<string> {
    const dir = path.join(pluginsDir, folder)
    await mkdir(dir, { recursive: true })
    await writeFile(path.join(dir, 'a.wasm'), `module ${version}`)
    await writeFile(
      path.join(dir, 'plugin.yaml'),
      `name: ${folder}\nversion: ${version}\nruntime: wasm\nentry: {wasm: a.wasm}\n`,
    )
    return dir
  }

  async function start(): Promise<PluginManager> {
    manager = createPluginManager({
      pluginsDir,
      hostVersion: '1.0.0',
      backends,
      logger: { log() {} },
      runners: { wasm: runner },
      signatures: { required: true, trustedKeys: [keys.publicKeyPem] },
    })
    await manager.start()
    return manager
  }

  beforeEach(async () => {
    pluginsDir = await mkdtemp(path.join(tmpdir(), 'corral-signed-'))
    backends = await createBackends({ databaseUrl: '', redisUrl: '' })
    runner = new FakeRunner()
  })

  afterEach(async () => {
    await manager?.close()
    manager = undefined
    await backends.close()
    await rm(pluginsDir, { recursive: true, force: true })
  })

  it('loads signed plugins and refuses unsigned ones, those signed by an untrusted key, and bare .wasm files', async () => {
    await signPluginPackage(await writePlugin('signed'), keys.privateKeyPem)
    await writePlugin('unsigned')
    await signPluginPackage(await writePlugin('foreign'), stranger.privateKeyPem)
    await writeFile(path.join(pluginsDir, 'bare.wasm'), '')
    const m = await start()
    const byName = Object.fromEntries(m.list().map((p) => [p.name, [p.state, p.lastError?.code]]))
    expect(byName).toEqual({
      signed: ['running', undefined],
      unsigned: ['failed', 'permission_denied'],
      foreign: ['failed', 'permission_denied'],
      bare: ['failed', 'permission_denied'],
    })
    expect(m.get('unsigned')?.lastError?.message).toMatch(/unsigned/)
    expect(m.get('foreign')?.lastError?.message).toMatch(/trusted/)
    expect(m.get('bare')?.lastError?.message).toMatch(/carries no signature/)
    expect(runner.loaded.map((p) => p.name)).toEqual(['signed'])
  })

  it('refuses a tampered version on reload and keeps the signed one serving, then takes it once signed', async () => {
    const dir = await writePlugin('alpha')
    await signPluginPackage(dir, keys.privateKeyPem)
    const m = await start()
    await writePlugin('alpha', '2.0.0')
    const refused = await failure(m.reload('alpha'))
    expect(refused.code).toBe('permission_denied')
    expect(refused.message).toMatch(/a\.wasm/)
    expect(m.get('alpha')).toMatchObject({ state: 'running', version: '1.0.0' })
    expect(await m.call('alpha', 'greet')).toEqual({ fn: 'greet', args: undefined })
    expect(runner.loaded).toHaveLength(1)
    await signPluginPackage(dir, keys.privateKeyPem)
    expect((await m.reload('alpha')).version).toBe('2.0.0')
  })

  it('refuses an unsigned folder loaded by hand', async () => {
    const m = await start()
    const dir = await writePlugin('late')
    expect((await failure(m.load(dir))).code).toBe('permission_denied')
    expect(m.get('late')?.state).toBe('failed')
    expect(runner.loaded).toEqual([])
  })
})
