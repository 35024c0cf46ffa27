import { describe, expect, it } from 'vitest'
import { classifyAddress } from './address-guard.js'

describe('classifyAddress', () => {
  it.each([
    ['93.184.216.34', 'unicast'],
    ['127.0.0.1', 'loopback'],
    ['10.1.2.3', 'private'],
    ['2606:4700::1111', 'unicast'],
    ['::1', 'loopback'],
    ['::', 'unspecified'],
    ['fd00::1', 'uniqueLocal'],
  ])('gives %s its own range (%s)', (address, range) => {
    expect(classifyAddress(address)).toEqual({ range, refused: false })
  })

  it.each([
    ['IPv4-mapped', '::ffff:127.0.0.1', '127.0.0.1', 'loopback'],
    ['IPv4-mapped in hex', '::ffff:7f00:1', '127.0.0.1', 'loopback'],
    ['IPv4-mapped, public', '::ffff:93.184.216.34', '93.184.216.34', 'unicast'],
    ['IPv4-translated', '::ffff:0:127.0.0.1', '127.0.0.1', 'loopback'],
    ['IPv4-translated, private', '::ffff:0:a01:203', '10.1.2.3', 'private'],
    ['NAT64', '64:ff9b::7f00:1', '127.0.0.1', 'loopback'],
    ['NAT64, metadata', '64:ff9b::169.254.169.254', '169.254.169.254', 'linkLocal'],
    ['NAT64, public', '64:ff9b::808:808', '8.8.8.8', 'unicast'],
  ])('judges %s %s by the IPv4 address it embeds', (_form, address, embeddedIpv4, range) => {
    expect(classifyAddress(address)).toEqual({ range, embeddedIpv4, refused: false })
  })

  it.each([
    // As Node's resolver prints an IPv4-compatible address (ipaddr.js alone reads it as IPv4-mapped).
    ['IPv4-compatible', '::127.0.0.1'],
    ['IPv4-compatible', '::7f00:1'],
    ['IPv4-compatible', '::808:808'],
    ['NAT64 local-use', '64:ff9b:1::7f00:1'],
    ['NAT64 local-use', '64:ff9b:1:7f00:1::'],
    ['6to4', '2002:7f00:1::1'],
    ['6to4', '2002:808:808::1'],
    // Server 65.54.227.120, client 127.0.0.1 obfuscated (XOR ffff:ffff) as 80ff:fffe.
    ['Teredo', '2001:0:4136:e378:8000:63bf:80ff:fffe'],
  ])('refuses %s %s whatever it embeds', (range, address) => {
    expect(classifyAddress(address)).toEqual({ range, refused: true })
  })

  it('throws on what is not an address', () => {
    expect(() => classifyAddress('localhost')).toThrow()
    expect(() => classifyAddress('fe80::1%eth0')).toThrow()
  })
})
