import { describe, expect, it } from 'vitest'
import { extismInputFromJson, extismOutputToJson } from './call-data.js'

const bytes = (text: string) => new TextEncoder().encode(text)
const text = (data: Uint8Array) => new TextDecoder().decode(data)

describe('extismInputFromJson', () => {
  it('gives a JSON string as its bare text, null as nothing, other JSON as it is', () => {
    expect(text(extismInputFromJson(bytes('"Hello, \\"World\\" ✓"')))).toBe('Hello, "World" ✓')
    expect(text(extismInputFromJson(bytes(' "padded"')))).toBe('padded')
    expect(extismInputFromJson(bytes('null')).length).toBe(0)
    expect(text(extismInputFromJson(bytes('{"a":"b"}')))).toBe('{"a":"b"}')
    expect(text(extismInputFromJson(bytes('[1,2]')))).toBe('[1,2]')
    expect(text(extismInputFromJson(bytes('nullish')))).toBe('nullish')
  })
})

describe('extismOutputToJson', () => {
  it('keeps JSON, quotes other text, base64s other bytes, and keeps nothing as nothing', () => {
    expect(text(extismOutputToJson(bytes('{"count":3}')))).toBe('{"count":3}')
    expect(JSON.parse(text(extismOutputToJson(bytes('Hello, Ada!'))))).toBe('Hello, Ada!')
    expect(JSON.parse(text(extismOutputToJson(new Uint8Array([0xff, 0x00]))))).toBe('/wA=')
    expect(extismOutputToJson(new Uint8Array(0)).length).toBe(0)
  })
})
