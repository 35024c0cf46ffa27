import { describe, expect, it } from 'vitest'
import { bitString, implicit, integer, objectIdentifier, tlv, utcTime } from './der.js'

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex')

describe('der', () => {
  it('writes short and long form lengths', () => {
    expect(hex(tlv(0x04, new Uint8Array(127))).slice(0, 4)).toBe('047f')
    expect(hex(tlv(0x04, new Uint8Array(200))).slice(0, 6)).toBe('0481c8')
    expect(hex(tlv(0x04, new Uint8Array(300))).slice(0, 8)).toBe('0482012c')
  })

  it('encodes object identifiers with arcs above 127 in base 128', () => {
    expect(hex(objectIdentifier('1.2.840.10045.4.3.2'))).toBe('06082a8648ce3d040302')
    expect(hex(objectIdentifier('2.5.29.17'))).toBe('0603551d11')
  })

  it('keeps an integer positive with a leading zero where its high bit is set', () => {
    expect(hex(integer(Uint8Array.of(2)))).toBe('020102')
    expect(hex(integer(Uint8Array.of(0x80, 1)))).toBe('0203008001')
  })

  it('writes UTCTime, bit strings and implicit tags', () => {
    expect(
      Buffer.from(utcTime(new Date(Date.UTC(2036, 0, 2, 3, 4, 5))))
        .subarray(2)
        .toString(),
    ).toBe('360102030405Z')
    expect(hex(bitString(Uint8Array.of(0x84), 2))).toBe('03020284')
    expect(hex(implicit(2, Buffer.from('a')))).toBe('820161')
  })
})
