import { describe, expect, it } from 'vitest'
import { extismInputFromJson, extismOutputValue } from './call-data.js'

const bytes = (text: string) => new TextEncoder().encode(text)
const text = (data: Uint8Array) => new TextDecoder().decode(data)

describe('extismInputFromJson', () => {
  it('gives a JSON string as its bare text, null as nothing, other JSON as it is', () => {
    expect(text(extismInputFromJson(JSON.stringify('Hello, "World" ✓')))).toBe('Hello, "World" ✓')
    expect(extismInputFromJson('null').length).toBe(0)
    expect(text(extismInputFromJson('{"a":"b"}'))).toBe('{"a":"b"}')
    expect(text(extismInputFromJson('[1,2]'))).toBe('[1,2]')
  })
})

describe('extismOutputValue', () => {
  it('parses JSON, keeps other text as a string, base64s other bytes, and gives null for nothing', () => {
    expect(extismOutputValue(bytes('{"count":3}'))).toEqual({ count: 3 })
    expect(extismOutputValue(bytes('Hello, Ada!'))).toBe('Hello, Ada!')
    expect(extismOutputValue(new Uint8Array([0xff, 0x00]))).toBe('/wA=')
    expect(extismOutputValue(new Uint8Array(0))).toBeNull()
  })
})
