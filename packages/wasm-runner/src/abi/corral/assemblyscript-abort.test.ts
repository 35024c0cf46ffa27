import { describe, expect, it } from 'vitest'
import { readAssemblyScriptString } from './assemblyscript-abort.js'

/** Memory holding an AssemblyScript string at 16: its byte length at 12, then UTF-16 code units. */
function memoryWith(text: string, byteLength = text.length * 2): Uint8Array {
  const memory = new Uint8Array(64 + text.length * 2)
  new DataView(memory.buffer).setUint32(12, byteLength, true)
  for (let i = 0; i < text.length; i++)
    new DataView(memory.buffer).setUint16(16 + i * 2, text.charCodeAt(i), true)
  return memory
}

describe('readAssemblyScriptString', () => {
  it('reads the string its header measures, and null for a null pointer', () => {
    expect(readAssemblyScriptString(memoryWith('ünïcode ✓'), 16, 100)).toBe('ünïcode ✓')
    expect(readAssemblyScriptString(memoryWith('x'), 0, 100)).toBeNull()
  })

  it('cuts a long string at the bound', () => {
    expect(readAssemblyScriptString(memoryWith('abcdef'), 16, 3)).toBe('abc…')
  })

  it('never reads outside memory, whatever the guest says', () => {
    const memory = memoryWith('abc')
    expect(readAssemblyScriptString(memory, 2, 100)).toBe('(unreadable)')
    expect(readAssemblyScriptString(memory, memory.length + 8, 100)).toBe('(unreadable)')
    expect(readAssemblyScriptString(memory, -4, 100)).toBe('(unreadable)')
    expect(readAssemblyScriptString(memoryWith('abc', 0xfffffff0), 16, 100)).toBe('(unreadable)')
  })
})
