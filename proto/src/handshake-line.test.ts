import { X509Certificate } from 'node:crypto'
import { isPluginError } from '@corral/types'
import { describe, expect, it } from 'vitest'
import { generateCertificate } from './auto-mtls.js'
import { formatHandshakeLine, parseHandshakeLine } from './handshake-line.js'

function failure(line: string) {
  return refusal(() => parseHandshakeLine(line, [1], 'p'))
}

function refusal(work: () => unknown) {
  try {
    work()
  } catch (error) {
    if (isPluginError(error)) return error
  }
  throw new Error('expected a PluginError')
}

describe('parseHandshakeLine', () => {
  it('reads a go-plugin gRPC line over a unix socket', () => {
    expect(parseHandshakeLine('1|1|unix|/tmp/plugin123|grpc|\n', [1], 'p')).toEqual({
      coreVersion: 1,
      appVersion: 1,
      network: 'unix',
      address: '/tmp/plugin123',
      protocol: 'grpc',
    })
  })

  it('reads a TCP address and a line without the certificate field', () => {
    expect(parseHandshakeLine('1|2|tcp|127.0.0.1:1234|grpc', [1, 2], 'p')).toMatchObject({
      appVersion: 2,
      network: 'tcp',
      address: '127.0.0.1:1234',
    })
  })

  it('turns the base64 DER certificate, padded or not, into PEM', async () => {
    const { certPem } = await generateCertificate()
    const der = new X509Certificate(certPem).raw.toString('base64')
    for (const encoded of [der, der.replace(/=+$/, '')]) {
      const line = parseHandshakeLine(`1|1|unix|/s|grpc|${encoded}`, [1], 'p')
      expect(new X509Certificate(line.serverCertPem ?? '').fingerprint256).toBe(
        new X509Certificate(certPem).fingerprint256,
      )
    }
  })

  it.each([
    ['hello world', 'load_failed', 'expected 5 or 6 fields'],
    ['x|1|unix|/s|grpc|', 'load_failed', 'core protocol version "x" is not a number'],
    ['2|1|unix|/s|grpc|', 'incompatible', 'core protocol version 2 is not 1'],
    ['1|7|unix|/s|grpc|', 'incompatible', 'app protocol version 7 is not one of 1'],
    ['1|1|udp|/s|grpc|', 'load_failed', 'network "udp" is neither unix nor tcp'],
    ['1|1|unix||grpc|', 'load_failed', 'the address is empty'],
    ['1|1|tcp|localhost|grpc|', 'load_failed', 'tcp address "localhost" is not host:port'],
    ['1|1|unix|/s|netrpc|', 'incompatible', 'net/rpc plugins are not supported'],
    ['1|1|unix|/s|grpc|not base64!', 'load_failed', 'the server certificate is not base64'],
    ['1|1|unix|/s|grpc|AAAA', 'load_failed', 'the server certificate does not parse'],
  ])('refuses %j: %s, %s', (line, code, message) => {
    const error = failure(line)
    expect(error.code).toBe(code)
    expect(error.message).toContain(message)
    // The offending line is always shown.
    expect(error.message).toContain(JSON.stringify(line))
  })
})

describe('formatHandshakeLine', () => {
  it('writes go-plugin’s line, which parseHandshakeLine reads back', () => {
    const line = formatHandshakeLine({ appVersion: 3, network: 'unix', address: '/tmp/p.sock' })
    expect(line).toBe('1|3|unix|/tmp/p.sock|grpc|\n')
    expect(parseHandshakeLine(line, [3], 'p')).toEqual({
      coreVersion: 1,
      appVersion: 3,
      network: 'unix',
      address: '/tmp/p.sock',
      protocol: 'grpc',
    })
  })

  it('sends the certificate as base64 DER without padding', async () => {
    const { certPem } = await generateCertificate()
    const line = formatHandshakeLine({
      appVersion: 1,
      network: 'tcp',
      address: '127.0.0.1:5000',
      serverCertPem: certPem,
    })
    const cert = line.trimEnd().split('|')[5] ?? ''
    expect(cert).toMatch(/^[A-Za-z0-9+/]+$/)
    expect(Buffer.from(cert, 'base64')).toEqual(new X509Certificate(certPem).raw)
    const parsed = parseHandshakeLine(line, [1], 'p')
    expect(new X509Certificate(parsed.serverCertPem ?? '').fingerprint256).toBe(
      new X509Certificate(certPem).fingerprint256,
    )
  })

  it.each([
    [{ appVersion: 1, network: 'unix', address: '' }, 'address "" is empty'],
    [{ appVersion: 1, network: 'unix', address: '/a|b' }, 'address "/a|b" is empty or holds "|"'],
    [{ appVersion: 1, network: 'unix', address: '/a\nb' }, 'or white space'],
    [{ appVersion: 1.5, network: 'unix', address: '/s' }, 'app protocol version 1.5 is not a whole number'],
    [{ appVersion: 1, network: 'unix', address: '/s', serverCertPem: 'nope' }, 'certificate does not parse'],
  ] as const)('refuses %j: %s', (fields, message) => {
    const error = refusal(() => formatHandshakeLine(fields))
    expect(error.code).toBe('invalid_argument')
    expect(error.message).toContain(message)
  })
})
