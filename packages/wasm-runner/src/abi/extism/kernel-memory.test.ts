import { describe, expect, it } from 'vitest'
import { KernelMemory } from './kernel-memory.js'

describe('KernelMemory', () => {
  it('hands out distinct non-zero handles whose length is the size asked for', () => {
    const memory = new KernelMemory(1 << 20)
    const a = memory.alloc(5)
    const b = memory.alloc(100)
    expect(a).toBeGreaterThan(0)
    expect(b).toBeGreaterThanOrEqual(a + 5)
    expect(memory.length(a)).toBe(5)
    expect(memory.length(b)).toBe(100)
  })

  it('returns 0 for a zero-size, negative, fractional or over-cap allocation', () => {
    const memory = new KernelMemory(1 << 20)
    expect(memory.alloc(0)).toBe(0)
    expect(memory.alloc(-1)).toBe(0)
    expect(memory.alloc(1.5)).toBe(0)
    expect(memory.alloc(2 << 20)).toBe(0)
  })

  it('stops at the cap: allocations fail with 0 instead of growing past it', () => {
    const memory = new KernelMemory(4 << 20)
    let count = 0
    while (memory.alloc(1 << 20) !== 0) count++
    expect(count).toBeLessThanOrEqual(4)
    expect(count).toBeGreaterThanOrEqual(3)
    expect(memory.byteLength).toBeLessThanOrEqual(4 << 20)
  })

  it('keeps data across growth', () => {
    const memory = new KernelMemory(8 << 20)
    const h = memory.write(new TextEncoder().encode('kept'))
    memory.alloc(1 << 20)
    expect(new TextDecoder().decode(memory.block(h))).toBe('kept')
  })

  it('reads 0 and ignores stores outside allocated memory', () => {
    const memory = new KernelMemory(1 << 20)
    const h = memory.alloc(8)
    memory.storeU64(h, 0x0102030405060708n)
    expect(memory.loadU64(h)).toBe(0x0102030405060708n)
    expect(memory.loadU8(h)).toBe(8)
    for (const offset of [0, 7, h + 8, 1e12, -1]) expect(memory.loadU8(offset)).toBe(0)
    expect(memory.loadU64(h + 1)).toBe(0n)
    memory.storeU8(h + 8, 1)
    memory.storeU64(h + 4, 1n)
    expect(memory.range(h, 8)).toEqual(new Uint8Array([8, 7, 6, 5, 4, 3, 2, 1]))
  })

  it('does not hand a freed block out again while it can grow, and ignores frees of what is not a block', () => {
    const memory = new KernelMemory(1 << 20)
    const a = memory.alloc(64)
    memory.free(a)
    memory.free(a)
    memory.free(12345)
    expect(memory.length(a)).toBe(0)
    expect(memory.block(a)).toBeUndefined()
    expect(memory.alloc(60)).not.toBe(a)
  })

  it('reuses freed blocks once it reaches its cap, the smallest that fits first', () => {
    const memory = new KernelMemory(128 * 1024)
    const big = memory.alloc(40 * 1024)
    const small = memory.alloc(1024)
    while (memory.alloc(8 * 1024) !== 0) {}
    while (memory.alloc(8) !== 0) {}
    memory.free(big)
    memory.free(small)
    expect(memory.alloc(1000)).toBe(small)
    expect(memory.alloc(1000)).toBe(big)
    expect(memory.length(big)).toBe(1000)
    expect(memory.alloc(1000)).toBe(0)
  })

  it('drops every block on reset and shrinks after a large call', () => {
    const memory = new KernelMemory(16 << 20)
    const h = memory.alloc(4 << 20)
    expect(memory.byteLength).toBeGreaterThanOrEqual(4 << 20)
    memory.reset()
    expect(memory.length(h)).toBe(0)
    expect(memory.loadU8(h)).toBe(0)
    expect(memory.byteLength).toBeLessThan(1 << 20)
  })
})
