import { matchAnyScope } from '@corral/manifest'
import type { LogLevel } from '@corral/types'
import { isPluginError, PluginError } from '@corral/types'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  behaviourPluginWat,
  compileWat,
  runtimeStartWat,
  unknownImportWat,
} from '../../testing/extism-plugins.js'
import { ExtismInstance } from './extism-instance.js'
import { isExtismModule } from './import-object.js'
import type { SyncHostCall } from './kernel.js'
import { ExtismVarStore } from './var-store.js'

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes)
const bytes = (value: string) => new TextEncoder().encode(value)

let module: WebAssembly.Module

beforeAll(async () => {
  module = new WebAssembly.Module(await compileWat(behaviourPluginWat))
})

interface Recorded {
  method: string
  args: unknown
}

/**
 * A synchronous host for main-thread tests: records every call, answers `http.request` for hosts
 * in `allowedHosts` (checked with the manifest's scope globs, as the manager does) and refuses the
 * rest with `permission_denied`.
 */
function testHost(allowedHosts: string[] = []): { hostCall: SyncHostCall; calls: Recorded[] } {
  const calls: Recorded[] = []
  const hostCall: SyncHostCall = (method, args) => {
    calls.push({ method, args })
    if (method === 'http.request') {
      const { url, method: verb, body } = args as { url: string; method: string; body?: string }
      const host = new URL(url).host
      if (!matchAnyScope(allowedHosts, host))
        throw new PluginError('permission_denied', `${host} is not granted`)
      const answer = `${verb} ${url}${body === undefined ? '' : ` ${Buffer.from(body, 'base64').toString()}`}`
      return { status: 201, headers: { 'x-test': 'yes' }, body: Buffer.from(answer).toString('base64') }
    }
    if (method === 'cache.get') return { value: null }
    if (method === 'log') return {}
    throw new PluginError('unimplemented', `no ${method}`)
  }
  return { hostCall, calls }
}

function create(
  options: {
    hostCall?: SyncHostCall
    vars?: ExtismVarStore
    logLevel?: LogLevel
    maxKernelBytes?: number
  } = {},
) {
  return ExtismInstance.create({
    module,
    hostCall: options.hostCall ?? testHost().hostCall,
    vars: options.vars ?? new ExtismVarStore(),
    ...(options.logLevel === undefined ? {} : { logLevel: options.logLevel }),
    ...(options.maxKernelBytes === undefined ? {} : { maxKernelBytes: options.maxKernelBytes }),
  })
}

function failure(run: () => unknown): PluginError {
  try {
    run()
  } catch (error) {
    if (isPluginError(error)) return error
    throw error
  }
  throw new Error('expected the call to fail')
}

describe('ExtismInstance', () => {
  it('is recognised as an Extism plugin by its imports', () => {
    expect(isExtismModule(module)).toBe(true)
  })

  it('counts vowels: input in, JSON out', () => {
    const instance = create()
    expect(text(instance.call('count_vowels', bytes('Hello, World!')))).toBe('{"count":3}')
    expect(text(instance.call('count_vowels', bytes('aeiou AEIOU xyz')))).toBe('{"count":10}')
    expect(text(instance.call('count_vowels', new Uint8Array(0)))).toBe('{"count":0}')
  })

  it('echoes input of every length, byte for byte', () => {
    const instance = create()
    for (const size of [1, 7, 8, 9, 100, 4096, 100_000]) {
      const input = new Uint8Array(size).map((_, i) => (i * 31 + size) & 0xff)
      expect(instance.call('echo', input)).toEqual(input)
    }
  })

  it('reads the plugin config, and nothing for a missing key', () => {
    const instance = create()
    instance.init({ greeting: 'hi there', limits: { max: 3 } })
    expect(text(instance.call('get_config', bytes('greeting')))).toBe('hi there')
    expect(text(instance.call('get_config', bytes('limits')))).toBe('{"max":3}')
    expect(instance.call('get_config', bytes('missing')).byteLength).toBe(0)
  })

  it('keeps a value when the plugin also frees the key that config_get consumed', () => {
    const instance = create()
    instance.init({ greeting: 'Howdy' })
    expect(text(instance.call('get_config_freeing_key', bytes('greeting')))).toBe('Howdy')
  })

  it('keeps vars across calls, and shares them between instances of one plugin', () => {
    const vars = new ExtismVarStore()
    const first = create({ vars })
    const second = create({ vars })
    expect(text(first.call('count_calls', new Uint8Array(0)))).toBe('1')
    expect(text(first.call('count_calls', new Uint8Array(0)))).toBe('2')
    expect(text(second.call('count_calls', new Uint8Array(0)))).toBe('3')
    expect(text(create().call('count_calls', new Uint8Array(0)))).toBe('1')
  })

  it('deletes a var when it is set to handle 0', () => {
    const vars = new ExtismVarStore()
    const instance = create({ vars })
    instance.call('store_blob', bytes('payload'))
    expect(text(instance.call('get_blob', new Uint8Array(0)))).toBe('payload')
    instance.call('delete_blob', new Uint8Array(0))
    expect(instance.call('get_blob', new Uint8Array(0)).byteLength).toBe(0)
    expect(vars.byteLength).toBe(0)
  })

  it('fails a var_set past the cap with resource_exhausted, keeps the old value and serves on', () => {
    const vars = new ExtismVarStore({ maxBytes: 1000 })
    const instance = create({ vars })
    instance.call('store_blob', new Uint8Array(900))
    const error = failure(() => instance.call('store_blob', new Uint8Array(1000)))
    expect(error.code).toBe('resource_exhausted')
    expect(instance.call('get_blob', new Uint8Array(0)).byteLength).toBe(900)
    expect(text(instance.call('count_calls', new Uint8Array(0)))).toBe('1')
  })

  it("fails with the plugin's message when it sets an error, with or without a non-zero return", () => {
    const instance = create()
    for (const fn of ['fail', 'fail_quietly']) {
      const error = failure(() => instance.call(fn, new Uint8Array(0)))
      expect(error.code).toBe('plugin_error')
      expect(error.rawMessage).toBe('something went wrong')
    }
    expect(text(instance.call('count_vowels', bytes('ok')))).toBe('{"count":1}')
  })

  it('fails on a non-zero return code, and accepts an export without a result', () => {
    const instance = create()
    const error = failure(() => instance.call('exit_code', new Uint8Array(0)))
    expect(error.code).toBe('plugin_error')
    expect(error.rawMessage).toContain('7')
    expect(text(instance.call('no_result', new Uint8Array(0)))).toBe('42')
  })

  it('reports a trap as plugin_trap', () => {
    expect(failure(() => create().call('trap', new Uint8Array(0))).code).toBe('plugin_trap')
  })

  it('fails with unimplemented for a missing export or a name that is not a function', () => {
    const instance = create()
    expect(failure(() => instance.call('nope', new Uint8Array(0))).code).toBe('unimplemented')
    expect(failure(() => instance.call('memory', new Uint8Array(0))).code).toBe('unimplemented')
    expect(failure(() => instance.call('constructor', new Uint8Array(0))).code).toBe('unimplemented')
  })

  it('returns 0 for every out-of-range load and ignores out-of-range stores', () => {
    expect(text(create().call('probe', bytes('0123456789')))).toBe('0')
    expect(text(create().call('probe', new Uint8Array(0)))).toBe('0')
  })

  it('empties the input when the plugin frees it', () => {
    expect(text(create().call('free_input', bytes('some input')))).toBe('0')
  })

  it('fails with invalid_argument when a host function gets a handle that is not a block', () => {
    const instance = create()
    expect(failure(() => instance.call('bad_handle', new Uint8Array(0))).code).toBe('invalid_argument')
    expect(text(instance.call('echo', bytes('still serving')))).toBe('still serving')
  })

  it('caps kernel memory: alloc returns 0 at the cap', () => {
    const instance = create({ maxKernelBytes: 8 << 20 })
    const count = Number(text(instance.call('alloc_bomb', new Uint8Array(0))))
    expect(count).toBeGreaterThan(0)
    expect(count).toBeLessThanOrEqual(8)
    expect(instance.kernel.memory.byteLength).toBeLessThan(1 << 20)
    const tooBig = failure(() => instance.call('echo', new Uint8Array(9 << 20)))
    expect(tooBig.code).toBe('resource_exhausted')
  })

  it('sends HTTP requests through the host, which refuses hosts outside the grant', () => {
    const { hostCall, calls } = testHost(['api.example.com'])
    const instance = create({ hostCall })
    expect(text(instance.call('fetch', bytes('https://api.example.com/v1/items')))).toBe(
      'GET https://api.example.com/v1/items',
    )
    expect(text(instance.call('fetch_status', bytes('https://api.example.com/')))).toBe('201')
    expect(JSON.parse(text(instance.call('fetch_headers', bytes('https://api.example.com/'))))).toEqual({
      'x-test': 'yes',
    })
    const refused = failure(() => instance.call('fetch', bytes('https://evil.example.net/steal')))
    expect(refused.code).toBe('permission_denied')
    expect(calls.filter((c) => c.method === 'http.request')).toHaveLength(4)
  })

  it('sends a request body, and the method upper-cased', () => {
    const { hostCall, calls } = testHost(['api.example.com'])
    const instance = create({ hostCall })
    instance.init({ url: 'https://api.example.com/submit' })
    expect(text(instance.call('post', bytes('{"a":1}')))).toBe('POST https://api.example.com/submit {"a":1}')
    expect(calls[0]?.args).toMatchObject({
      method: 'POST',
      headers: {},
      body: Buffer.from('{"a":1}').toString('base64'),
    })
  })

  it('logs at each level to the host log, dropping levels below the configured one', () => {
    const { hostCall, calls } = testHost()
    const instance = create({ hostCall, logLevel: 'warn' })
    expect(text(instance.call('log_all', bytes('disk is full')))).toBe('3')
    expect(calls).toEqual([
      { method: 'log', args: { level: 'warn', message: 'disk is full' } },
      { method: 'log', args: { level: 'error', message: 'disk is full' } },
    ])
    const everything = testHost()
    expect(
      text(create({ hostCall: everything.hostCall, logLevel: 'trace' }).call('log_all', bytes('x'))),
    ).toBe('0')
    expect(everything.calls.map((c) => (c.args as { level: string }).level)).toEqual([
      'trace',
      'debug',
      'info',
      'warn',
      'error',
    ])
  })

  it('keeps serving when the host refuses a log line', () => {
    const instance = create({
      hostCall: () => {
        throw new PluginError('rate_limited', 'too many log lines')
      },
    })
    expect(text(instance.call('log_all', bytes('x')))).toBe('2')
  })

  it('reaches the Corral host API through corral_host_call, errors included', () => {
    const { hostCall, calls } = testHost()
    const instance = create({ hostCall })
    expect(JSON.parse(text(instance.call('cache_get', bytes('{"key":"k"}'))))).toEqual({
      ok: { value: null },
    })
    expect(calls).toEqual([{ method: 'cache.get', args: { key: 'k' } }])
    expect(JSON.parse(text(instance.call('cache_get', bytes('not json'))))).toEqual({
      error: { code: 'invalid_argument', message: 'the arguments of cache.get are not JSON' },
    })
  })

  it("refuses the kernel's own var methods through corral_host_call", () => {
    const { hostCall, calls } = testHost()
    const response = create({ hostCall }).call('reserved_host_call', bytes('{"key":"calls","value":null}'))
    expect(JSON.parse(text(response)).error.code).toBe('unimplemented')
    expect(calls).toHaveLength(0)
  })

  it('serves thousands of sequential calls without kernel or guest memory growing', () => {
    const instance = create()
    const guestMemory = instance.instance.exports.memory as WebAssembly.Memory
    const input = bytes('The quick brown fox jumps over the lazy dog')
    instance.call('count_vowels', input)
    const kernelBytes = instance.kernel.memory.byteLength
    const guestBytes = guestMemory.buffer.byteLength
    for (let i = 0; i < 5000; i++) expect(text(instance.call('count_vowels', input))).toBe('{"count":11}')
    expect(instance.kernel.memory.byteLength).toBe(kernelBytes)
    expect(guestMemory.buffer.byteLength).toBe(guestBytes)
  })

  it("starts the guest's language runtime as Extism does", async () => {
    const order = async (starts: Parameters<typeof runtimeStartWat>[0]) => {
      const started = ExtismInstance.create({
        module: new WebAssembly.Module(await compileWat(runtimeStartWat(starts))),
        hostCall: testHost().hostCall,
        vars: new ExtismVarStore(),
      })
      const out = started.call('order', new Uint8Array(0))
      return new DataView(out.buffer, out.byteOffset).getBigUint64(0, true)
    }
    expect(await order(['_initialize', 'hs_init'])).toBe(12n)
    expect(await order(['hs_init'])).toBe(2n)
    expect(await order(['_initialize', '__wasm_call_ctors'])).toBe(3n)
    expect(await order(['_initialize'])).toBe(1n)
    expect(await order([])).toBe(0n)
  })

  it('fails to load a module importing a kernel function that does not exist, naming it', async () => {
    const unknown = new WebAssembly.Module(await compileWat(unknownImportWat))
    const error = failure(() =>
      ExtismInstance.create({ module: unknown, hostCall: testHost().hostCall, vars: new ExtismVarStore() }),
    )
    expect(error.code).toBe('load_failed')
    expect(error.rawMessage).toContain('extism:host/env.teleport')
  })
})
