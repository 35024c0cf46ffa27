import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { defaultPolicy } from '@corral/manifest'
import type { CurrentPlugin, ExtismHostFunctions } from '@corral/wasm-runner/extism'
import { compileWat, hostFunctionPluginWat } from '@corral/wasm-runner/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Backends, createBackends } from '../backends/create-backends.js'
import type { PluginManager } from '../plugin-manager/manager-api.js'
import { createPluginManager } from '../plugin-manager/plugin-manager.js'

/**
 * Extism user host functions through the manager: the host declares them per plugin, the WASM
 * runner gives them to that plugin's module (a real one, built from WAT), and a plugin the host
 * declared none for cannot import them.
 */
describe('Extism user host functions under the plugin manager', () => {
  let pluginsDir: string
  let backends: Backends
  let manager: PluginManager
  const greeted: string[] = []
  const functions: ExtismHostFunctions = {
    'extism:host/user': {
      hello(plugin: CurrentPlugin, handle: bigint) {
        const name = plugin.read(handle)?.text() ?? '?'
        greeted.push(name)
        return plugin.store(`Hello, ${name}!`)
      },
    },
    env: { add_numbers: (_plugin: CurrentPlugin, a: number, b: number) => a + b },
  }

  beforeAll(async () => {
    pluginsDir = await mkdtemp(path.join(tmpdir(), 'corral-extism-functions-'))
    const wasm = await compileWat(hostFunctionPluginWat)
    for (const name of ['hosted', 'bare']) {
      const dir = path.join(pluginsDir, name)
      await mkdir(dir)
      await writeFile(path.join(dir, 'plugin.wasm'), wasm)
      await writeFile(
        path.join(dir, 'plugin.yaml'),
        `name: ${name}\nversion: 1.0.0\nruntime: wasm\nentry: {wasm: plugin.wasm}\nwasm: {extism: {}}\n`,
      )
    }
    backends = await createBackends({ databaseUrl: '', redisUrl: '' })
    manager = createPluginManager({
      pluginsDir,
      hostVersion: '1.0.0',
      backends,
      policies: ['hosted', 'bare'].map((plugin) => ({
        ...defaultPolicy(plugin),
        status: 'approved' as const,
      })),
      jobs: false,
      logger: { log() {} },
      extismFunctions: (plugin) => (plugin === 'hosted' ? functions : undefined),
    })
    await manager.start()
  })
  afterAll(async () => {
    await manager?.close()
    await backends?.close()
    await rm(pluginsDir, { recursive: true, force: true })
  })

  it('gives a plugin the functions the host declared for it', async () => {
    expect(await manager.call('hosted', 'greet', 'Ada')).toBe('Hello, Ada!')
    expect(greeted).toEqual(['Ada'])
    expect(await manager.call('hosted', 'add')).toBe('*') // one byte, 42
  })

  it('refuses to load a plugin whose module imports functions the host declared none of', () => {
    expect(manager.get('bare')).toMatchObject({
      state: 'failed',
      lastError: { code: 'load_failed', message: expect.stringContaining('extism:host/user') },
    })
    expect(manager.get('hosted')?.state).toBe('running')
  })
})
