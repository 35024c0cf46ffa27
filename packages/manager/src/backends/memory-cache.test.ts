import { describe, expect, it } from 'vitest'
import { createMemoryCache } from './memory-cache.js'

describe('createMemoryCache', () => {
  it('expires entries on its clock', async () => {
    let t = 1000
    const cache = createMemoryCache({ now: () => t })
    await cache.set('p', 'k', Buffer.from('v'), 500)
    t = 1499
    expect((await cache.get('p', 'k'))?.toString()).toBe('v')
    t = 1500
    expect(await cache.get('p', 'k')).toBeNull()
  })

  it('evicts only the flooding namespace', async () => {
    const cache = createMemoryCache({ maxEntriesPerNamespace: 3 })
    await cache.set('quiet', 'keep', Buffer.from('1'))
    for (let i = 0; i < 10; i++) await cache.set('flood', `k${i}`, Buffer.from('x'))
    expect((await cache.get('quiet', 'keep'))?.toString()).toBe('1')
    expect(await cache.get('flood', 'k0')).toBeNull()
    expect((await cache.get('flood', 'k9'))?.toString()).toBe('x')
  })
})
