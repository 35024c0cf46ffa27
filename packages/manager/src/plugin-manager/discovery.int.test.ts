import { mkdir, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { processesWithCommandLine } from '@corral/grpc-runner/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type helloGrpc from '../../../../examples/plugins/hello-grpc/src/plugin.js'
import {
  approved,
  copyExample,
  startManager,
  tempPluginsDir,
  writeSdkFixturePlugin,
} from '../testing/plugin-folders.js'
import type { PluginManager } from './manager-api.js'

/**
 * Discovery of a real plugins folder: good WASM and gRPC plugins beside a bad manifest, a plugin
 * whose module is missing, and two folders declaring one name. The good ones run; every bad one is
 * `failed` with an error that says why; none of them stops the others.
 */
describe('a plugins folder with broken plugins and a duplicate name (real plugins)', () => {
  let folder: Awaited<ReturnType<typeof tempPluginsDir>>
  let started: Awaited<ReturnType<typeof startManager>>
  let manager: PluginManager

  beforeAll(async () => {
    folder = await tempPluginsDir()
    const dir = folder.dir
    await copyExample('hello-wasm', dir)
    await copyExample('c-wasm', dir)
    await copyExample('hello-grpc', dir)
    // Two folders, one name: both refused.
    await writeSdkFixturePlugin(dir, 'twin-a')
    await writeSdkFixturePlugin(dir, 'twin-b')
    await writeFile(
      path.join(dir, 'twin-b/plugin.yaml'),
      'name: twin-a\nversion: 0.2.0\nruntime: grpc\nentry:\n  node: sdk-plugin.mjs\n  args: [well, twin-a]\n',
    )
    // A manifest that is not one.
    await mkdir(path.join(dir, 'bad-manifest'))
    await writeFile(path.join(dir, 'bad-manifest/plugin.yaml'), 'name: Bad Name!\nruntime: cobol\n')
    // A valid manifest whose module is missing.
    await copyExample('hello-wasm', dir, 'no-module')
    await writeFile(
      path.join(dir, 'no-module/plugin.yaml'),
      'name: no-module\nversion: 0.1.0\nruntime: wasm\nentry:\n  wasm: build/plugin.wasm\n',
    )
    await rm(path.join(dir, 'no-module/build'), { recursive: true })
    started = await startManager({
      pluginsDir: dir,
      policies: [
        approved('hello-wasm', [{ type: 'cache', access: ['read', 'write'], scope: ['greetings:*'] }]),
        approved('hello-grpc', [
          { type: 'db', access: ['read', 'write'], scope: ['hello_grpc_*'] },
          { type: 'cache', access: ['read', 'write'], scope: ['*'] },
        ]),
      ],
    })
    manager = started.manager
  }, 120_000)

  afterAll(async () => {
    await started?.close()
    await folder?.remove()
  })

  it('runs every good plugin and serves its calls', async () => {
    const states = Object.fromEntries(manager.list().map((p) => [p.name, p.state]))
    expect(states).toMatchObject({ 'hello-wasm': 'running', 'c-wasm': 'running', 'hello-grpc': 'running' })
    expect(await manager.call('hello-wasm', 'greet', { name: 'Ada' })).toEqual({
      message: 'Hello, Ada!',
      count: 1,
    })
    expect(await manager.call('c-wasm', 'count', { text: 'one two three' })).toMatchObject({ words: 3 })
    expect(await manager.call('hello-grpc', 'greet', { name: 'Bo' })).toEqual({
      text: 'Hello, Bo!',
      count: 1,
    })
  })

  it('serves a typed client of hello-grpc, and refuses bad arguments naming each field', async () => {
    const hello = manager.client<typeof helloGrpc>('hello-grpc')
    const { text } = await hello.greet({ name: 'Cy' })
    expect(text).toBe('Hello, Cy!')
    await expect(hello.addNote({ day: 'monday', text: 7 } as never)).rejects.toMatchObject({
      code: 'invalid_argument',
      plugin: 'hello-grpc',
      fields: [
        { field: 'day', message: 'must be YYYY-MM-DD' },
        { field: 'text', message: expect.stringMatching(/expected string, received number/) },
      ],
    })
  })

  it('refuses both folders that declare one name, naming the other', () => {
    const a = manager.get('twin-a')
    const b = manager.get('twin-b')
    expect(a?.state).toBe('failed')
    expect(b?.state).toBe('failed')
    expect(a?.lastError).toMatchObject({ code: 'already_exists' })
    expect(a?.lastError?.message).toMatch(
      /plugin name twin-a is also declared by twin-b; none of them is loaded/,
    )
    expect(b?.lastError?.message).toMatch(/also declared by twin-a/)
    // Neither was started: no process runs from either folder.
    expect(processesWithCommandLine(path.join(folder.dir, 'twin-'))).toEqual([])
  })

  it('reports a bad manifest with the fields that are wrong', () => {
    const bad = manager.get('bad-manifest')
    expect(bad?.state).toBe('failed')
    expect(bad?.lastError?.code).toBe('manifest_invalid')
    expect(bad?.lastError?.message).toMatch(/name/)
    expect(bad?.lastError?.message).toMatch(/runtime/)
  })

  it('reports a plugin whose module is missing with the path it looked for', () => {
    const missing = manager.get('no-module')
    expect(missing?.state).toBe('failed')
    expect(missing?.lastError?.message).toMatch(/build\/plugin\.wasm/)
  })

  it('refuses calls into a failed plugin with unavailable, and into an unknown one with not_found', async () => {
    await expect(manager.call('no-module', 'greet', {})).rejects.toMatchObject({ code: 'unavailable' })
    await expect(manager.call('nobody', 'greet', {})).rejects.toMatchObject({ code: 'not_found' })
  })

  it('sends every failure as a state event', () => {
    const failed = started.events.flatMap((e) =>
      e.type === 'plugin.state' && e.to === 'failed' ? [e.plugin] : [],
    )
    expect(failed.sort()).toEqual(['bad-manifest', 'no-module', 'twin-a', 'twin-b'])
  })
})
