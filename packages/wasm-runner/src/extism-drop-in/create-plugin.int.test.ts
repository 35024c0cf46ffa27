import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { CurrentPlugin } from '../abi/extism/current-plugin.js'
import { behaviourPluginWat, compileWat, hostFunctionPluginWat } from '../testing/extism-plugins.js'
import { failure } from '../testing/plugin-failure.js'
import type { ExtismPlugin, ExtismPluginOptions } from './create-plugin.js'
import { createPlugin } from './create-plugin.js'
import * as dropIn from './index.js'

/**
 * The drop-in against Extism JS's own test cases, ported from their behaviour: a plugin loaded from
 * a path, bytes or a manifest; config, vars, bytes in and out, errors, timeouts, user host
 * functions (sync and async), allowed hosts and WASI. Real workers, real modules built from WAT.
 */

let dir: string
let behaviourPath: string
let behaviour: Uint8Array
let hostFunctions: Uint8Array
let server: Server
let origin: string
const open: ExtismPlugin[] = []

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'corral-drop-in-'))
  behaviour = await compileWat(behaviourPluginWat)
  hostFunctions = await compileWat(hostFunctionPluginWat)
  behaviourPath = path.join(dir, 'behaviour.wasm')
  await writeFile(behaviourPath, behaviour)
  server = createServer((_request, response) => response.end('hello from the host'))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(async () => {
  await Promise.all(open.map((plugin) => plugin.close()))
  await new Promise((resolve) => server.close(resolve))
  await rm(dir, { recursive: true, force: true })
})

async function load(
  manifest: Parameters<typeof createPlugin>[0],
  options: ExtismPluginOptions = {},
): Promise<ExtismPlugin> {
  const plugin = await createPlugin(manifest, { logger: quiet, ...options })
  open.push(plugin)
  return plugin
}

const quiet = { debug() {}, info() {}, warn() {}, error() {} }

describe('createPlugin', () => {
  it("is imported in each of Extism JS's forms: default, createPlugin and newPlugin", () => {
    expect(dropIn.default).toBe(createPlugin)
    expect(dropIn.createPlugin).toBe(createPlugin)
    expect(dropIn.newPlugin).toBe(createPlugin)
  })

  it('loads from a path, from bytes and from a manifest, and calls with text in and JSON out', async () => {
    for (const source of [behaviourPath, behaviour, { wasm: [{ data: behaviour }] }]) {
      const plugin = await load(source)
      const output = await plugin.call('count_vowels', 'Hello, world!')
      expect(output?.json()).toEqual({ count: 3 })
      expect(output?.text()).toBe('{"count":3}')
    }
  })

  it('passes bytes through exactly, and resolves null when the plugin writes nothing', async () => {
    const plugin = await load(behaviourPath)
    const bytes = new Uint8Array([0, 255, 1, 254, 0x7b, 0x22])
    expect((await plugin.call('echo', bytes))?.bytes()).toEqual(bytes)
    expect(await plugin.call('get_config', 'missing')).toBeNull()
  })

  it('reads config from the options over the manifest', async () => {
    const plugin = await load(
      { wasm: [{ path: behaviourPath }], config: { thing: 'manifest', other: 'kept' } },
      { config: { thing: 'options' } },
    )
    expect((await plugin.call('get_config', 'thing'))?.text()).toBe('options')
    expect((await plugin.call('get_config', 'other'))?.text()).toBe('kept')
  })

  it('keeps vars across calls, bounded by memory.maxVarBytes', async () => {
    const plugin = await load(behaviourPath, { memory: { maxVarBytes: 64 } })
    const count = async () => (await plugin.call('count_calls'))?.text()
    expect(await count()).toBe('1')
    expect(await count()).toBe('2')
    const error = await failure(plugin.call('store_blob', 'x'.repeat(100)))
    expect(error.code).toBe('resource_exhausted')
  })

  it("fails with the plugin's error message, and keeps serving", async () => {
    const plugin = await load(behaviourPath)
    const error = await failure(plugin.call('fail'))
    expect(error.code).toBe('plugin_error')
    expect(error.message).toContain('something went wrong')
    expect((await plugin.call('echo', 'still here'))?.text()).toBe('still here')
  })

  it('stops a call past timeoutMs, then serves the next one', async () => {
    const plugin = await load(behaviourPath, { timeoutMs: 200 })
    expect((await failure(plugin.call('spin'))).code).toBe('deadline_exceeded')
    expect((await plugin.call('echo', 'again'))?.text()).toBe('again')
  })

  it('says which functions exist', async () => {
    const plugin = await load(behaviourPath)
    expect(await plugin.functionExists('count_vowels')).toBe(true)
    expect(await plugin.functionExists('nope')).toBe(false)
    expect((await failure(plugin.call('nope'))).code).toBe('unimplemented')
  })

  it('runs user host functions, sync and async, against the guest kernel memory', async () => {
    const seen: string[] = []
    const functions = (delay: number) => ({
      'extism:host/user': {
        async hello(plugin: CurrentPlugin, handle: bigint) {
          const name = plugin.read(handle)?.text() ?? '?'
          seen.push(name)
          if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay))
          plugin.setVariable('last', name)
          return plugin.store(`Hello, ${name}! (${plugin.getVariable('last')?.text()})`)
        },
      },
      env: { add_numbers: (_plugin: CurrentPlugin, a: number, b: number) => a + b },
    })
    for (const delay of [0, 20]) {
      const plugin = await load(hostFunctions, { functions: functions(delay) })
      expect((await plugin.call('greet', 'Ada'))?.text()).toBe('Hello, Ada! (Ada)')
      expect([...((await plugin.call('add'))?.bytes() ?? [])]).toEqual([42])
    }
    expect(seen).toEqual(['Ada', 'Ada'])
  })

  it("fails a call whose host function throws, with the function's message", async () => {
    const plugin = await load(hostFunctions, {
      functions: {
        'extism:host/user': {
          hello() {
            throw new Error('the host said no')
          },
        },
        env: { add_numbers: () => 0 },
      },
    })
    const error = await failure(plugin.call('greet', 'Ada'))
    expect(error.message).toContain('the host said no')
  })

  it('refuses to load a module whose host functions were not given', async () => {
    const error = await failure(createPlugin(hostFunctions, { logger: quiet }))
    expect(error.code).toBe('load_failed')
    expect(error.message).toMatch(/unknown import extism:host\/user\.hello/)
  })

  it('refuses manifest text that is not JSON: manifest_invalid', async () => {
    const error = await failure(createPlugin('{"wasm": [', { logger: quiet }))
    expect(error.code).toBe('manifest_invalid')
    expect(error.message).toContain('the manifest text is not JSON')
  })

  it('reaches allowedHosts only', async () => {
    const refused = await load(behaviourPath)
    expect((await failure(refused.call('fetch', `${origin}/`))).code).toBe('permission_denied')
    const allowed = await load(behaviourPath, { allowedHosts: ['127.0.0.1'] })
    expect((await allowed.call('fetch', `${origin}/`))?.text()).toBe('hello from the host')
  })

  it('offers WASI to a module that imports it', async () => {
    const wasi = await compileWat(`(module
      (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
      (memory (export "memory") 1)
      (func (export "random") (result i32) (call $random_get (i32.const 64) (i32.const 16))))`)
    const plugin = await load(wasi, { useWasi: true })
    expect(await plugin.call('random')).toBeNull()
  })
})
