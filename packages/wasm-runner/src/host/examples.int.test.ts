import { fileURLToPath } from 'node:url'
import { defaultPolicy, effectiveGrant, loadManifest } from '@corral/manifest'
import type { HostCallHandler, Plugin, ResourceLimits } from '@corral/types'
import { PluginError } from '@corral/types'
import { afterAll, describe, expect, it } from 'vitest'
import { createWasmRunner } from './wasm-runner.js'

/**
 * The example plugins, built from source by the build (AssemblyScript with the SDK's library, and
 * C with clang and wasi-libc, and AssemblyScript with Extism's own PDK), loaded from their own
 * manifests, end to end.
 */
const examples = fileURLToPath(new URL('../../../../examples/plugins/', import.meta.url))
const runner = createWasmRunner()
afterAll(() => runner.close())

interface HostLog {
  method: string
  args: unknown
}

/** A host API with an in-memory cache that, like the real one, stays within the plugin's grant. */
function fakeHost(calls: HostLog[], cacheScope: string): HostCallHandler {
  const cache = new Map<string, string>()
  return async (method, args) => {
    calls.push({ method, args })
    const { key, value } = args as { key?: string; value?: string }
    if (method.startsWith('cache.') && !key?.startsWith(cacheScope)) {
      throw new PluginError('permission_denied', `cache key ${key} is not granted`)
    }
    if (method === 'cache.get') return { value: cache.get(key as string) ?? null }
    if (method === 'cache.set') {
      cache.set(key as string, value as string)
      return {}
    }
    if (method === 'log') return {}
    throw new PluginError('unimplemented', `no host method ${method}`)
  }
}

async function loadExample(
  name: string,
  calls: HostLog[],
  cacheScope = '',
  limits: Partial<ResourceLimits> = {},
  hostApi: HostCallHandler = fakeHost(calls, cacheScope),
): Promise<Plugin> {
  const { manifest, dir } = await loadManifest(`${examples}${name}`)
  const grant = effectiveGrant(manifest.resources, {
    ...defaultPolicy(manifest.name),
    status: 'approved',
    grants: manifest.resources.permissions,
  })
  Object.assign(grant.limits, limits)
  return runner.load({ manifest, dir, grant, hostApi })
}

describe('examples/plugins/hello-wasm (AssemblyScript)', () => {
  it('registers from its manifest, greets with its config, counts in the host cache, and fails with its own code', async () => {
    const calls: HostLog[] = []
    const plugin = await loadExample('hello-wasm', calls, 'greetings:')
    const registration = await plugin.register()
    expect(registration.routes).toEqual([expect.objectContaining({ path: '/greet', handler: 'greetRoute' })])
    await plugin.init({ greeting: 'Bonjour' })

    expect(await plugin.call('greet', { name: 'Ada' })).toEqual({ message: 'Bonjour, Ada!', count: 1 })
    expect(await plugin.call('greet', { name: 'Ada' })).toEqual({ message: 'Bonjour, Ada!', count: 2 })
    expect(await plugin.call('greet', { name: 'Grace' })).toEqual({ message: 'Bonjour, Grace!', count: 1 })
    expect(calls.map((c) => c.method)).toContain('cache.set')
    expect(calls).toContainEqual({ method: 'cache.set', args: { key: 'greetings:Ada', value: btoa('2') } })
    expect(calls).toContainEqual({
      method: 'log',
      args: { level: 'info', message: 'greeted Ada', fields: {} },
    })

    await expect(plugin.call('greet', { name: '' })).rejects.toMatchObject({
      code: 'hello-wasm:missing_name',
    })
    await expect(plugin.call('greet', {})).rejects.toMatchObject({
      code: 'invalid_argument',
      rawMessage: 'field "name" is missing',
      fields: [{ field: 'name', message: 'field "name" is missing' }],
    })
    await expect(plugin.call('greet', { name: 7 })).rejects.toMatchObject({
      code: 'invalid_argument',
      rawMessage: 'field "name" must be a string, got number',
    })
    await expect(plugin.call('greet', [1])).rejects.toMatchObject({
      code: 'invalid_argument',
      rawMessage: 'the arguments must be an object, got array',
    })
    expect(await plugin.call('widget')).toBe('<p>Bonjour from WebAssembly.</p>')
    await plugin.shutdown()
  })

  it('keeps its memory bounded over many calls (the SDK frees what it allocates)', async () => {
    const plugin = await loadExample('hello-wasm', [], 'greetings:')
    await plugin.init({ greeting: 'Hi' })
    const text = 'x'.repeat(50_000)
    // 2000 × ~100 KB in and out is far above the 16 MiB cap: only freed memory gets there.
    for (let i = 0; i < 2_000; i++) await plugin.call('widget', { text })
    expect(await plugin.call('widget')).toBe('<p>Hi from WebAssembly.</p>')
    await plugin.shutdown()
  })

  it('runs out of memory at its 16 MiB cap on a name too long for it: resource_exhausted naming the cap', async () => {
    // A long call_timeout: the guest must get as far as its memory cap, however loaded the machine.
    const plugin = await loadExample('hello-wasm', [], 'greetings:', { call_timeout: 20_000 })
    await plugin.init({ greeting: 'Hi' })
    const error = await plugin.call('greet', { name: 'x'.repeat(2_000_000) }).catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'resource_exhausted' })
    expect((error as PluginError).rawMessage).toMatch(
      /could not grow within its cap of 16 MiB \(memory_mb\)$/,
    )
    // The instance that ran out is replaced.
    expect(await plugin.call('greet', { name: 'Ada' })).toEqual({ message: 'Hi, Ada!', count: 1 })
    await plugin.shutdown()
  })
})

describe('examples/plugins/c-wasm (C with corral.h, clang, wasi-libc)', () => {
  it('counts words and vowels, logs through the host API, and fails with its own codes', async () => {
    const calls: HostLog[] = []
    const plugin = await loadExample('c-wasm', calls)
    expect((await plugin.register()).routes).toEqual([
      expect.objectContaining({ path: '/count', handler: 'count' }),
    ])
    await plugin.init({})
    expect(await plugin.call('count', { text: 'Hello brave new world' })).toEqual({
      chars: 21,
      words: 4,
      vowels: 6,
    })
    expect(await plugin.call('count', { text: '  «Ünïcode»\n  ok  ' })).toEqual({
      chars: 18,
      words: 2,
      vowels: 3,
    })
    expect(calls).toContainEqual({
      method: 'log',
      args: { level: 'debug', message: 'counted a text', fields: { chars: 21, words: 4, vowels: 6 } },
    })
    await expect(plugin.call('count', { words: 1 })).rejects.toMatchObject({ code: 'c-wasm:missing_text' })
    await expect(plugin.call('count', { text: null })).rejects.toMatchObject({ code: 'c-wasm:missing_text' })
    await expect(plugin.call('count', { text: ['a'] })).rejects.toMatchObject({
      code: 'invalid_argument',
      rawMessage: 'field "text" must be a string',
      fields: [{ field: 'text', message: 'must be a string' }],
    })
    await expect(plugin.callBytes('count', new TextEncoder().encode('{"text": "a'))).rejects.toMatchObject({
      code: 'c-wasm:invalid_input',
    })
    // Escapes are read as the characters they stand for: a tab separates words, \u00e9 is one character.
    const escaped = new TextEncoder().encode(String.raw`{"text": "tab\there \"quoted\" \u00e9"}`)
    expect(JSON.parse(new TextDecoder().decode(await plugin.callBytes('count', escaped)))).toEqual({
      chars: 19,
      words: 4,
      vowels: 6,
    })
    for (let i = 0; i < 500; i++) await plugin.call('count', { text: 'y'.repeat(20_000) })
    expect(await plugin.call('count', { text: 'a e' })).toEqual({ chars: 3, words: 2, vowels: 2 })
    await plugin.shutdown()
  })
})

describe("examples/plugins/extism-as (AssemblyScript, Extism's PDK)", () => {
  const encoder = new TextEncoder()

  it('loads as an Extism plugin from its manifest: bytes and JSON calls, config, a var shared by its instances', async () => {
    const plugin = await loadExample('extism-as', [])
    await plugin.init({ vowels: 'aeiou' })
    // callBytes: the input's bytes in, the output's bytes back exactly.
    expect(await plugin.callBytes('count_vowels', encoder.encode('Hello, World! AEIOU'))).toEqual(
      encoder.encode('{"count":3,"total":3,"vowels":"aeiou"}'),
    )
    // call: a JSON string reaches it as its bare text; its JSON output comes back as a value.
    expect(await plugin.call('count_vowels', 'audio')).toEqual({ count: 4, total: 7, vowels: 'aeiou' })
    // Its two instances (wasm.pool.max_instances) keep one total: vars are the plugin's, on the host.
    const totals = await Promise.all(
      Array.from({ length: 6 }, () => plugin.call('count_vowels', 'a') as Promise<{ total: number }>),
    )
    expect(totals.map((t) => t.total).sort((a, b) => a - b)).toEqual([8, 9, 10, 11, 12, 13])
    await plugin.shutdown()
  })

  it("greets through corral_host_call to the host API's log, and fails with the host's refusal or its own error", async () => {
    const calls: HostLog[] = []
    const plugin = await loadExample('extism-as', calls)
    await plugin.init({})
    expect(new TextDecoder().decode(await plugin.callBytes('greet', encoder.encode('Zoë')))).toBe(
      'Hello, Zoë!',
    )
    expect(calls).toEqual([{ method: 'log', args: { level: 'info', message: 'greeted Zoë' } }])
    await expect(plugin.call('fail', 'unicorn')).rejects.toMatchObject({
      code: 'plugin_error',
      message: expect.stringContaining('no such thing: unicorn'),
    })
    await plugin.shutdown()

    const refusing: HostCallHandler = async () => {
      throw new PluginError('permission_denied', 'no logs today')
    }
    const refused = await loadExample('extism-as', [], '', {}, refusing)
    await refused.init({})
    const error = await refused.call('greet', 'Ada').catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'plugin_error' })
    expect((error as PluginError).message).toMatch(/the host refused: .*permission_denied.*no logs today/)
    await refused.shutdown()
  })

  it('bounds its kernel memory by wasm.extism.max_pages: an input past it fails the call, and the plugin serves on', async () => {
    const plugin = await loadExample('extism-as', [])
    await plugin.init({})
    // 16 pages of 64 KiB (plugin.yaml): an input of 900 kB fits in the kernel's memory, 1.1 MB does not.
    const text = (size: number) => new Uint8Array(size).fill(0x61)
    expect(await plugin.callBytes('count_vowels', text(900_000))).toEqual(
      encoder.encode('{"count":900000,"total":900000,"vowels":"aeiouAEIOU"}'),
    )
    const error = await plugin.callBytes('count_vowels', text(1_100_000)).catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'resource_exhausted' })
    expect((error as PluginError).message).toMatch(/does not fit in kernel memory/)
    expect(await plugin.call('count_vowels', 'ae')).toEqual({
      count: 2,
      total: 900_002,
      vowels: 'aeiouAEIOU',
    })
    await plugin.shutdown()
  })
})
