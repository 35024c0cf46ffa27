import { describe, expect, it } from 'vitest'
import { createPluginClient } from './plugin-client.js'

type Demo = { functions: { greet: (args: unknown) => { text: string } } }

describe('createPluginClient', () => {
  it('calls the function named by the property, with the arguments and options given', async () => {
    const calls: unknown[][] = []
    const client = createPluginClient<Demo>(async (...call) => {
      calls.push(call)
      return { text: 'hi' }
    })
    expect(await client.greet({ name: 'Ada' }, { timeoutMs: 50 })).toEqual({ text: 'hi' })
    expect(calls).toEqual([['greet', { name: 'Ada' }, { timeoutMs: 50 }]])
  })

  it('can be awaited: it has no then to call', async () => {
    const client = createPluginClient<Demo>(async () => {
      throw new Error('no call expected')
    })
    expect(await Promise.resolve(client)).toBe(client)
  })
})
