import { describe, expect, it } from 'vitest'
import { corralWat, wat2wasm } from '../testing/wat-plugin.js'
import { capModuleMemory, readModuleInfo } from './wasm-binary.js'

describe('readModuleInfo', () => {
  it('reads imports and exports with their signatures, and memories', async () => {
    const info = readModuleInfo(await wat2wasm(corralWat('', { pages: 3 })))
    expect(info.imports).toContainEqual({
      module: 'corral',
      name: 'host_call',
      kind: 'function',
      type: { params: ['i32', 'i32', 'i32', 'i32'], results: ['i64'] },
    })
    expect(info.exports).toContainEqual({
      name: 'echo',
      kind: 'function',
      type: { params: ['i32', 'i32'], results: ['i64'] },
    })
    expect(info.exports).toContainEqual({ name: 'memory', kind: 'memory' })
    expect(info.memories).toEqual([{ initial: 3, maximum: undefined, shared: false, memory64: false }])
  })

  it.each([
    ['garbage', new TextEncoder().encode('not wasm')],
    ['a truncated module', new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 50, 1])],
    ['another binary version', new Uint8Array([0, 97, 115, 109, 2, 0, 0, 0])],
  ])('refuses %s with load_failed', (_name, bytes) => {
    expect(() => readModuleInfo(bytes)).toThrow(expect.objectContaining({ code: 'load_failed' }))
  })
})

describe('capModuleMemory', () => {
  it('sets a missing maximum and lowers a larger one, keeping the module valid', async () => {
    const unbounded = await wat2wasm('(module (memory (export "memory") 1))')
    const capped = capModuleMemory(unbounded, 8)
    expect(readModuleInfo(capped).memories[0]).toMatchObject({ initial: 1, maximum: 8 })
    expect(WebAssembly.validate(capped as Uint8Array<ArrayBuffer>)).toBe(true)
    const large = await wat2wasm('(module (memory (export "memory") 1 60000) (func (export "f")))')
    expect(readModuleInfo(capModuleMemory(large, 16)).memories[0]?.maximum).toBe(16)
    const small = await wat2wasm('(module (memory 1 4))')
    expect(readModuleInfo(capModuleMemory(small, 16)).memories[0]?.maximum).toBe(4)
  })

  it('refuses a memory that starts above the cap', async () => {
    const large = await wat2wasm('(module (memory 20))')
    expect(() => capModuleMemory(large, 16)).toThrow(/20 pages/)
  })
})
