import { createHash } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { defaultLimits, effectiveGrant, matchAnyScope } from '@corral/manifest'
import type { HostCallHandler, Plugin, ResourcePolicy } from '@corral/types'
import { isPluginError, PluginError } from '@corral/types'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createWasmRunner } from '../../host/wasm-runner.js'
import { behaviourPluginWat, compileWat, unknownImportWat } from '../../testing/extism-plugins.js'
import type { ExtismManifest } from './extism-manifest.js'
import { fromExtismManifest } from './extism-manifest.js'

/**
 * Extism-ABI plugins under the real runner: worker threads, the pool, timeouts, the memory cap,
 * and a host API that enforces the `http` grant with the manifest's scope globs, as the manager
 * does, in front of a real HTTP server on 127.0.0.1.
 */

const runner = createWasmRunner()
let dir: string
let wasm: Uint8Array
let server: Server
let origin: string
let serverHits: string[] = []
const logs: Array<{ level: string; message: string }> = []

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'corral-extism-int-'))
  wasm = await compileWat(behaviourPluginWat)
  await writeFile(path.join(dir, 'plugin.wasm'), wasm)
  await writeFile(path.join(dir, 'unknown.wasm'), await compileWat(unknownImportWat))
  server = createServer((request, response) => {
    serverHits.push(request.url ?? '')
    const delay = Number(new URL(request.url ?? '/', 'http://x').searchParams.get('delay') ?? 0)
    setTimeout(() => {
      response.setHeader('x-served-by', 'corral-test')
      response.end(`served ${request.method} ${request.url}`)
    }, delay)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(async () => {
  await runner.close()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  await rm(dir, { recursive: true, force: true })
})

const approved = (plugin: string, grants: ResourcePolicy['grants']): ResourcePolicy => ({
  plugin,
  status: 'approved',
  grants,
  limits: {
    ...defaultLimits,
    memory_mb: 64,
    call_timeout: 5_000,
    init_timeout: 10_000,
    shutdown_timeout: 2_000,
    max_output_bytes: 1 << 20,
  },
  rate_limits: { calls_per_second: 1_000, db_queries_per_minute: 1_000, http_requests_per_minute: 1_000 },
})

/**
 * Loads the behaviour plugin from an Extism manifest, with a host API that serves `http.request`
 * only for hosts in the plugin's effective `http` grant.
 */
async function load(
  name: string,
  extism: Omit<ExtismManifest, 'wasm'> = {},
  pool = 1,
  limits: Partial<ResourcePolicy['limits']> = {},
): Promise<Plugin> {
  const hash = createHash('sha256').update(wasm).digest('hex')
  const { manifest } = await fromExtismManifest(
    { wasm: [{ path: 'plugin.wasm', hash }], ...extism },
    { name, dir },
  )
  manifest.wasm = { ...manifest.wasm, pool: { max_instances: pool, wait_timeout: 10_000 } }
  const grant = effectiveGrant(
    manifest.resources,
    approved(name, [{ type: 'http', access: [], scope: ['*'] }]),
  )
  Object.assign(grant.limits, limits)
  const httpScope = grant.permissions.find((p) => p.type === 'http')?.scope ?? []
  const hostApi: HostCallHandler = async (method, args) => {
    if (method === 'log') {
      logs.push(args as { level: string; message: string })
      return {}
    }
    if (method === 'cache.get') return { value: null }
    if (method !== 'http.request') throw new PluginError('unimplemented', `no host method ${method}`)
    const request = args as { method: string; url: string; headers?: Record<string, string>; body?: string }
    const host = new URL(request.url).host
    if (!matchAnyScope(httpScope, host))
      throw new PluginError('permission_denied', `http: ${host} is not granted`)
    const init: RequestInit = { method: request.method }
    if (request.headers !== undefined) init.headers = request.headers
    if (request.body !== undefined) init.body = Buffer.from(request.body, 'base64')
    const response = await fetch(request.url, init)
    const headers: Record<string, string> = {}
    response.headers.forEach((value, key) => {
      headers[key] = value
    })
    return {
      status: response.status,
      headers,
      body: Buffer.from(await response.arrayBuffer()).toString('base64'),
    }
  }
  const plugin = await runner.load({ manifest, dir, grant, hostApi })
  await plugin.init(manifest.config)
  return plugin
}

async function failure(promise: Promise<unknown>): Promise<PluginError> {
  try {
    await promise
  } catch (error) {
    if (isPluginError(error)) return error
    throw error
  }
  throw new Error('expected the call to fail')
}

describe('Extism plugins under the WASM runner', () => {
  it('counts vowels: a string goes in as its text, JSON comes out as a value', async () => {
    const plugin = await load('vowels')
    expect(await plugin.call('count_vowels', 'Hello, World!')).toEqual({ count: 3 })
    expect(await plugin.call('echo', { text: 'x', n: [1, 2] })).toEqual({ text: 'x', n: [1, 2] })
    expect(await plugin.call('echo', 'plain text')).toBe('plain text')
    expect(await plugin.call('echo')).toBeNull()
    await plugin.shutdown()
  })

  it('round-trips bytes exactly through callBytes: formatting, large integers, quoting, binary', async () => {
    const plugin = await load('vowels-bytes')
    const encode = (text: string) => new TextEncoder().encode(text)
    const inputs = [
      encode('{"config":   "x" ,\n "b" : [1,2]}'),
      encode('{"id": 12345678901234567890123}'),
      encode('"quoted"'),
      encode('quoted'),
      Uint8Array.from({ length: 256 }, (_, i) => i),
      new Uint8Array(70_000).fill(0xfe),
      new Uint8Array(0),
    ]
    for (const input of inputs) {
      const output = await plugin.callBytes('echo', input)
      expect(Buffer.from(output).equals(Buffer.from(input))).toBe(true)
    }
    expect(new TextDecoder().decode(await plugin.callBytes('count_vowels', encode('"aeiou"')))).toBe(
      '{"count":5}',
    )
    await plugin.shutdown()
  })

  it('reads the config from the Extism manifest, and the config given to init', async () => {
    const plugin = await load('configured', { config: { greeting: 'hello from the manifest' } })
    expect(await plugin.call('get_config', 'greeting')).toBe('hello from the manifest')
    await plugin.init({ greeting: 'hello from the host' })
    expect(await plugin.call('get_config', 'greeting')).toBe('hello from the host')
    expect(await plugin.call('get_config', 'missing')).toBeNull()
    await plugin.shutdown()
  })

  it("keeps vars across calls and shares them between the pool's instances", async () => {
    const plugin = await load('counter', { allowed_hosts: [new URL(origin).host] }, 2)
    // A slow call holds one instance; the next call gets the other one.
    const first = plugin.call('fetch', `${origin}/slow?delay=1500`)
    expect(await plugin.call('count_calls')).toBe(1)
    const second = plugin.call('fetch', `${origin}/slow?delay=1500`)
    await first
    // The instance the first slow call held now counts; it sees the other instance's var.
    expect(await plugin.call('count_calls')).toBe(2)
    await second
    expect(await plugin.call('count_calls')).toBe(3)
    await plugin.shutdown()
  })

  it('gets no more instances than the grant max_instances, whatever the manifest asks', async () => {
    const plugin = await load('capped', { allowed_hosts: [new URL(origin).host] }, 8, { max_instances: 1 })
    const slow = plugin.call('fetch', `${origin}/slow?delay=1000`)
    // The one instance is busy: the next call waits for it instead of starting a second.
    const waited = await failure(plugin.call('count_calls', null, { timeoutMs: 300 }))
    expect(waited.code).toBe('deadline_exceeded')
    await slow
    expect(await plugin.call('count_calls')).toBe(1)
    await plugin.shutdown()
  })

  it("fails with the plugin's error message, and on a non-zero return", async () => {
    const plugin = await load('failing')
    const error = await failure(plugin.call('fail'))
    expect(error.code).toBe('plugin_error')
    expect(error.rawMessage).toBe('something went wrong')
    expect((await failure(plugin.call('exit_code'))).code).toBe('plugin_error')
    expect(await plugin.call('count_vowels', 'still here')).toEqual({ count: 3 })
    await plugin.shutdown()
  })

  it('fails a trap with plugin_trap and serves the next call from a fresh instance', async () => {
    const plugin = await load('trapping')
    expect((await failure(plugin.call('trap'))).code).toBe('plugin_trap')
    expect(await plugin.call('count_vowels', 'aaa')).toEqual({ count: 3 })
    await plugin.shutdown()
  })

  it('stops an infinite loop at its deadline, and keeps serving', async () => {
    const plugin = await load('spinning', { timeout_ms: 300 })
    const started = Date.now()
    expect((await failure(plugin.call('spin'))).code).toBe('deadline_exceeded')
    expect(Date.now() - started).toBeLessThan(4_000)
    expect(await plugin.call('count_vowels', 'after the loop')).toEqual({ count: 5 })
    await plugin.shutdown()
  })

  it("keeps the guest's own memory at the grant's memory_mb, whatever max_pages says", async () => {
    // The module starts with 40 pages, more than max_pages: Extism runs it, and so does Corral.
    const plugin = await load('bomb', { memory: { max_pages: 16 } })
    const pages = (await plugin.call('grow_memory')) as number
    expect(pages).toBeGreaterThan(40)
    expect(pages).toBeLessThanOrEqual(1024) // memory_mb 64
    await plugin.shutdown()
  })

  it('bounds kernel memory by max_pages: an allocation within it works, past it fails the call', async () => {
    const plugin = await load('kernel-pages', { memory: { max_pages: 2 } })
    const within = new Uint8Array(40 * 1024).fill(7)
    expect(Buffer.from(await plugin.callBytes('echo', within)).equals(Buffer.from(within))).toBe(true)
    const past = await failure(plugin.callBytes('echo', new Uint8Array(200 * 1024)))
    expect(past.code).toBe('resource_exhausted')
    expect(await plugin.call('alloc_bomb')).toBe(0) // not one 1 MiB block fits in 128 KiB
    expect(Buffer.from(await plugin.callBytes('echo', within)).equals(Buffer.from(within))).toBe(true)
    await plugin.shutdown()
  })

  it('caps kernel memory at the memory limit too', async () => {
    const plugin = await load('kernel-bomb', {}, 1, { memory_mb: 4 })
    expect(await plugin.call('alloc_bomb')).toBeLessThanOrEqual(4)
    await plugin.shutdown()
  })

  it('bounds the vars by max_var_bytes', async () => {
    const plugin = await load('small-vars', { memory: { max_var_bytes: 1_000 } })
    await plugin.call('store_blob', 'x'.repeat(500))
    expect((await failure(plugin.call('store_blob', 'y'.repeat(2_000)))).code).toBe('resource_exhausted')
    expect(((await plugin.call('get_blob')) as string).length).toBe(500)
    await plugin.shutdown()
  })

  it('fails the call of a response body above max_http_response_bytes', async () => {
    const plugin = await load('small-responses', {
      allowed_hosts: [new URL(origin).host],
      memory: { max_http_response_bytes: 10 },
    })
    const error = await failure(plugin.call('fetch', `${origin}/a-long-enough-path`))
    expect(error.code).toBe('resource_exhausted')
    expect(error.rawMessage).toContain('max_http_response_bytes 10')
    await plugin.shutdown()
  })

  it('bounds the vars of a plugin: a var_set past 1 MiB fails with resource_exhausted', async () => {
    const plugin = await load('hoarder')
    await plugin.call('store_blob', 'x'.repeat(600_000))
    const error = await failure(plugin.call('store_blob', 'y'.repeat(1_100_000)))
    expect(error.code).toBe('resource_exhausted')
    expect(((await plugin.call('get_blob')) as string).length).toBe(600_000)
    await plugin.shutdown()
  })

  it("fails an output above the grant's max_output_bytes with resource_exhausted", async () => {
    const plugin = await load('talker')
    expect(((await plugin.call('echo', 'z'.repeat(500_000))) as string).length).toBe(500_000)
    expect((await failure(plugin.call('echo', 'z'.repeat(1_100_000)))).code).toBe('resource_exhausted')
    expect(await plugin.call('echo', 'short')).toBe('short')
    await plugin.shutdown()
  })

  it('reaches an allowed host over HTTP, and is refused one outside allowed_hosts before any request', async () => {
    const port = new URL(origin).port
    const plugin = await load('fetcher', { allowed_hosts: [`127.0.0.1:${port}`] })
    serverHits = []
    expect(await plugin.call('fetch', `${origin}/hello`)).toBe('served GET /hello')
    expect(await plugin.call('fetch_status', `${origin}/hello`)).toBe(200)
    expect(await plugin.call('fetch_headers', `${origin}/hello`)).toMatchObject({
      'x-served-by': 'corral-test',
    })
    const refused = await failure(plugin.call('fetch', `http://localhost:${port}/secret`))
    expect(refused.code).toBe('permission_denied')
    // A host function that failed does not hang or poison the next call.
    expect(await plugin.call('fetch', `${origin}/again`)).toBe('served GET /again')
    expect(serverHits).toEqual(['/hello', '/hello', '/hello', '/again'])
    await plugin.shutdown()
  })

  it('logs to the host at info and above', async () => {
    const plugin = await load('logger')
    logs.length = 0
    expect(await plugin.call('log_all', 'disk almost full')).toBe(2)
    expect(logs).toEqual([
      { level: 'info', message: 'disk almost full' },
      { level: 'warn', message: 'disk almost full' },
      { level: 'error', message: 'disk almost full' },
    ])
    await plugin.shutdown()
  })

  it('reaches the Corral host API through corral_host_call', async () => {
    const plugin = await load('corral-caller')
    expect(await plugin.call('cache_get', { key: 'k' })).toEqual({ ok: { value: null } })
    expect(await plugin.call('reserved_host_call', { key: 'calls', value: null })).toMatchObject({
      error: { code: 'unimplemented' },
    })
    await plugin.shutdown()
  })

  it('serves many sequential calls without growing guest memory or latency', async () => {
    const plugin = await load('steady')
    const input = 'The quick brown fox jumps over the lazy dog'
    const pages = await plugin.call('memory_pages')
    const times: number[] = []
    for (let i = 0; i < 3_000; i++) {
      const t0 = performance.now()
      expect(await plugin.call('count_vowels', input)).toEqual({ count: 11 })
      times.push(performance.now() - t0)
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
    // A generous margin: the point is that latency does not climb with the number of calls.
    expect(median(times.slice(-500))).toBeLessThan(median(times.slice(500, 1_000)) * 4 + 0.5)
    expect(await plugin.call('memory_pages')).toBe(pages)
    await plugin.shutdown()
  })

  it('refuses to load a module importing a kernel function that does not exist', async () => {
    const hash = createHash('sha256').update(wasm).digest('hex')
    const { manifest } = await fromExtismManifest(
      { wasm: [{ path: 'plugin.wasm', hash }] },
      { name: 'unknown', dir },
    )
    manifest.entry = { wasm: 'unknown.wasm' }
    const grant = effectiveGrant(manifest.resources, approved('unknown', []))
    const error = await failure(runner.load({ manifest, dir, grant, hostApi: async () => ({}) }))
    expect(error.code).toBe('load_failed')
    expect(error.rawMessage).toContain('extism:host/env.teleport')
  })
})
