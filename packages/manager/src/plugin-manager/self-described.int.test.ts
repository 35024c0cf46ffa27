import { copyFile, mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { behaviourPluginWat, compileWat, registeringWat, wat2wasm } from '@corral/wasm-runner/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { approved, failureCode, startManager, tempPluginsDir } from '../testing/plugin-folders.js'
import type { PluginManager } from './manager-api.js'

/**
 * Plugins without a plugin.yaml, in a real plugins folder under real runners: bare `.wasm` modules
 * that carry their registration (WAT compiled now; hello-wasm's built module, which carries none),
 * and a folder with an Extism `manifest.json`.
 */

const helloWasmModule = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../../../examples/plugins/hello-wasm/build/plugin.wasm',
)

const echoRegistration = {
  name: 'echo-bare',
  version: '1.2.0',
  description: 'echoes, described by itself',
  routes: [{ method: 'POST', path: '/echo', handler: 'echo' }],
}

describe('plugins that describe themselves (bare .wasm, Extism manifest.json)', () => {
  let folder: Awaited<ReturnType<typeof tempPluginsDir>>
  let started: Awaited<ReturnType<typeof startManager>>
  let manager: PluginManager

  beforeAll(async () => {
    folder = await tempPluginsDir()
    const dir = folder.dir
    await writeFile(path.join(dir, 'echo.wasm'), await wat2wasm(registeringWat(echoRegistration)))
    await copyFile(helloWasmModule, path.join(dir, 'hello-wasm.wasm'))
    await writeFile(
      path.join(dir, 'greedy.wasm'),
      await wat2wasm(
        registeringWat({
          name: 'greedy',
          version: '0.1.0',
          permissions: [{ type: 'db', access: ['read'], scope: ['*'] }],
        }),
      ),
    )
    await writeFile(
      path.join(dir, 'spinning.wasm'),
      await wat2wasm(`(module
        (import "corral" "host_call" (func (param i32 i32 i32 i32) (result i64)))
        (memory (export "memory") 1)
        (func (export "corral_abi_version") (result i32) (i32.const 1))
        (func (export "corral_alloc") (param i32) (result i32) (i32.const 1024))
        (func (export "corral_register") (param i32 i32) (result i64) (loop $l (br $l)) (i64.const 0)))`),
    )
    const vowels = path.join(dir, 'vowels')
    await mkdir(vowels)
    await writeFile(path.join(vowels, 'vowels.wasm'), await compileWat(behaviourPluginWat))
    await writeFile(
      path.join(vowels, 'manifest.json'),
      JSON.stringify({ wasm: [{ path: 'vowels.wasm' }], config: { greeting: 'hi' }, timeout_ms: 2000 }),
    )
    const broken = path.join(dir, 'broken-extism')
    await mkdir(broken)
    await writeFile(
      path.join(broken, 'manifest.json'),
      JSON.stringify({ wasm: [{ url: 'https://x/y.wasm' }] }),
    )
    started = await startManager({ pluginsDir: dir })
    manager = started.manager
  }, 60_000)

  afterAll(async () => {
    await started?.close()
    await folder?.remove()
  })

  it('loads a bare module under the name and version its registration gives, with no permission requested', async () => {
    const info = manager.get('echo-bare')
    expect(info?.state).toBe('running')
    expect(info?.path).toBe(path.join(folder.dir, 'echo.wasm'))
    expect(info?.manifest).toMatchObject({
      name: 'echo-bare',
      version: '1.2.0',
      description: 'echoes, described by itself',
      runtime: 'wasm',
      entry: { wasm: 'echo.wasm' },
      resources: { permissions: [] },
    })
    expect(info?.policy?.status).toBe('pending_review')
    expect(info?.grant?.permissions).toEqual([])
    expect(await manager.call('echo-bare', 'echo', { said: 'bare' })).toEqual({ said: 'bare' })
    expect(manager.registries.matchRoute('POST', '/plugins/echo-bare/echo')?.route.handler).toBe('echo')
  })

  it('refuses a bare module without corral_register (hello-wasm built), one claiming permissions, and one whose corral_register never returns', async () => {
    expect(manager.get('hello-wasm')).toMatchObject({ state: 'failed', lastError: { code: 'load_failed' } })
    expect(manager.get('hello-wasm')?.lastError?.message).toMatch(/exports no corral_register/)
    expect(manager.get('greedy')).toMatchObject({ state: 'failed', lastError: { code: 'load_failed' } })
    expect(manager.get('greedy')?.lastError?.message).toMatch(/requests no permissions: put it in a folder/)
    expect(manager.get('spinning')).toMatchObject({
      state: 'failed',
      lastError: { code: 'deadline_exceeded' },
    })
  })

  it('loads a folder with an Extism manifest.json, named after the folder, and refuses a bad one', async () => {
    const info = manager.get('vowels')
    expect(info?.state).toBe('running')
    expect(info?.manifest).toMatchObject({
      name: 'vowels',
      version: '0.0.0',
      config: { greeting: 'hi' },
      resources: { call_timeout: 2000 },
    })
    expect(await manager.call('vowels', 'count_vowels', 'Corral plugins')).toEqual({ count: 4 })
    expect(manager.get('broken-extism')).toMatchObject({
      state: 'failed',
      lastError: { code: 'manifest_invalid' },
    })
    expect(manager.get('broken-extism')?.lastError?.message).toMatch(/wasm\[0\]\.url/)
  })

  it('applies policies to a bare plugin as to any other: blocked stops it, approved loads it again', async () => {
    await manager.setPolicy({ ...approved('echo-bare'), status: 'blocked' })
    expect(await failureCode(manager.call('echo-bare', 'echo', {}))).toBe('permission_denied')
    await manager.setPolicy(approved('echo-bare'))
    expect(manager.get('echo-bare')?.state).toBe('running')
    expect(await manager.call('echo-bare', 'echo', [1])).toEqual([1])
  })

  it('reloads a bare module by name, reading its registration again', async () => {
    await writeFile(
      path.join(folder.dir, 'echo.wasm'),
      await wat2wasm(registeringWat({ ...echoRegistration, version: '1.3.0' })),
    )
    expect(await manager.reload('echo-bare')).toMatchObject({ state: 'running', version: '1.3.0' })
  })
})
