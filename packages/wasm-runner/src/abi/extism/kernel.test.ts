import type { PluginError } from '@corral/types'
import { describe, expect, it } from 'vitest'
import type { SyncHostCall } from './kernel.js'
import { ExtismKernel } from './kernel.js'
import { ExtismVarStore } from './var-store.js'

const bytes = (text: string) => new TextEncoder().encode(text)
const text = (data: Uint8Array | undefined) => new TextDecoder().decode(data)

function kernel(hostCall: SyncHostCall = () => ({})) {
  return new ExtismKernel({ hostCall, vars: new ExtismVarStore() })
}

function thrown(run: () => unknown): PluginError {
  try {
    run()
  } catch (error) {
    return error as PluginError
  }
  throw new Error('expected a failure')
}

describe('ExtismKernel', () => {
  it('stores the input as a block and resets everything at the next call', () => {
    const k = kernel()
    k.beginCall(bytes('abc'))
    const input = k.inputOffset()
    expect(k.memory.length(input)).toBe(3)
    expect(k.inputLength()).toBe(3)
    expect(k.inputLoadU8(2)).toBe(0x63)
    expect(k.inputLoadU8(3)).toBe(0)
    expect(k.inputLoadU64(0)).toBe(0n)
    const scratch = k.memory.write(bytes('scratch'))
    k.outputSet(scratch, 7)
    expect(text(k.endCall('f', 0))).toBe('scratch')
    expect(k.memory.length(scratch)).toBe(0)
    k.beginCall(new Uint8Array(0))
    expect([k.inputOffset(), k.inputLength(), k.errorGet()]).toEqual([0, 0, 0])
    expect(k.endCall('f', 0).length).toBe(0)
  })

  it('ignores an output range or an error handle outside kernel memory, and clears an error set to 0', () => {
    const k = kernel()
    k.beginCall(bytes('in'))
    k.outputSet(1 << 30, 4)
    k.errorSet(999_999)
    expect(k.errorGet()).toBe(0)
    const message = k.memory.write(bytes('bad'))
    k.errorSet(message)
    expect(k.errorGet()).toBe(message)
    k.errorSet(0)
    expect(k.endCall('f', 0).length).toBe(0)
  })

  it('fails a call that set an error, with its message, and frees its memory all the same', () => {
    const k = kernel()
    k.beginCall(bytes('in'))
    k.errorSet(k.memory.write(bytes('the disk is on fire')))
    const error = thrown(() => k.endCall('f', 0))
    expect([error.code, error.rawMessage]).toEqual(['plugin_error', 'the disk is on fire'])
    expect(k.inputLength()).toBe(0)
  })

  it('gives corral_host_call no arguments as {} and returns the host error as data', () => {
    const calls: unknown[] = []
    const k = kernel((method, args) => {
      calls.push([method, args])
      if (method === 'db.query') throw new Error('no database')
      return { value: 1 }
    })
    k.beginCall(new Uint8Array(0))
    const ok = k.corralHostCall(k.memory.write(bytes('cache.get')), 0)
    expect(JSON.parse(text(k.memory.block(ok)))).toEqual({ ok: { value: 1 } })
    const failed = k.corralHostCall(k.memory.write(bytes('db.query')), k.memory.write(bytes('{"sql":"x"}')))
    expect(JSON.parse(text(k.memory.block(failed)))).toEqual({
      error: { code: 'internal', message: 'no database' },
    })
    expect(calls).toEqual([
      ['cache.get', {}],
      ['db.query', { sql: 'x' }],
    ])
  })

  it('fails the call on a malformed HTTP request, before asking the host', () => {
    const calls: string[] = []
    const k = kernel((method) => {
      calls.push(method)
      return { status: 200, headers: {}, body: '' }
    })
    k.beginCall(new Uint8Array(0))
    for (const request of [
      'not json',
      '{"method":"GET"}',
      '{"url":"http://a","headers":[1]}',
      '{"url":"http://a","method":1}',
    ]) {
      expect(thrown(() => k.httpRequest(k.memory.write(bytes(request)), 0)).code).toBe('invalid_argument')
    }
    expect(thrown(() => k.httpRequest(k.memory.write(bytes('{"url":"http://a"}')), 424242)).code).toBe(
      'invalid_argument',
    )
    expect(calls).toEqual([])
    expect(k.httpRequest(k.memory.write(bytes('{"url":"http://a"}')), 0)).toBe(0)
    expect([k.httpStatusCode(), text(k.memory.block(k.httpHeaders()))]).toEqual([200, '{}'])
  })

  it('consumes a filtered log line without reading it, even from a bad handle', () => {
    const calls: unknown[] = []
    const k = kernel((method, args) => calls.push([method, args]))
    k.beginCall(new Uint8Array(0))
    const line = k.memory.write(bytes('verbose'))
    k.log('debug', line)
    k.log('trace', 123_456)
    expect(k.memory.length(line)).toBe(0)
    expect(calls).toEqual([])
    expect(thrown(() => k.log('error', 123_456)).code).toBe('invalid_argument')
  })
})
