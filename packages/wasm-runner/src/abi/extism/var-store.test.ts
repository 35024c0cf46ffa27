import type { HostCallContext } from '@corral/types'
import { isPluginError } from '@corral/types'
import { describe, expect, it } from 'vitest'
import { ExtismVarStore, remoteVars } from './var-store.js'

const context: HostCallContext = { plugin: 'counter' }

describe('ExtismVarStore', () => {
  it('counts keys and values against the cap, and frees them on delete', () => {
    const vars = new ExtismVarStore({ maxBytes: 20 })
    vars.set('ab', new Uint8Array(8))
    expect(vars.byteLength).toBe(10)
    vars.set('ab', new Uint8Array(18))
    expect(vars.byteLength).toBe(20)
    vars.set('ab', undefined)
    expect(vars.byteLength).toBe(0)
    expect(vars.get('ab')).toBeUndefined()
  })

  it('refuses a set past the cap with resource_exhausted and keeps what it had', () => {
    const vars = new ExtismVarStore({ maxBytes: 20 })
    vars.set('a', new Uint8Array([1]))
    let error: unknown
    try {
      vars.set('b', new Uint8Array(19))
    } catch (e) {
      error = e
    }
    expect(isPluginError(error) && error.code).toBe('resource_exhausted')
    expect(vars.get('a')).toEqual(new Uint8Array([1]))
    expect(vars.get('b')).toBeUndefined()
    expect(vars.byteLength).toBe(2)
  })

  it("answers the kernel's var methods and passes every other method on", async () => {
    const vars = new ExtismVarStore()
    const seen: string[] = []
    const route = vars.routeHostCalls(async (method) => {
      seen.push(method)
      return { passed: method }
    })
    await route('extism.var_set', { key: 'k', value: Buffer.from('v').toString('base64') }, context)
    expect(await route('extism.var_get', { key: 'k' }, context)).toEqual({
      value: Buffer.from('v').toString('base64'),
    })
    await route('extism.var_set', { key: 'k', value: null }, context)
    expect(await route('extism.var_get', { key: 'k' }, context)).toEqual({ value: null })
    expect(await route('cache.get', { key: 'k' }, context)).toEqual({ passed: 'cache.get' })
    expect(seen).toEqual(['cache.get'])
    await expect(route('extism.var_get', { key: 3 }, context)).rejects.toMatchObject({
      code: 'invalid_argument',
    })
  })

  it('is reached from an instance through synchronous host calls', () => {
    const store = new ExtismVarStore()
    // In a worker the host call crosses the channel; answering directly stands in for it here.
    const vars = remoteVars((method, args) => store.answer(method, args))
    vars.set('k', new Uint8Array([7]))
    expect(store.get('k')).toEqual(new Uint8Array([7]))
    expect(vars.get('k')).toEqual(new Uint8Array([7]))
    vars.set('k', undefined)
    expect(vars.get('k')).toBeUndefined()
  })
})
