import { X509Certificate } from 'node:crypto'
import { generateCertificate } from '@corral/proto'
import { isPluginError } from '@corral/types'
import { describe, expect, it } from 'vitest'
import { parseHandshakeLine } from './handshake-line.js'

function failure(line: string) {
  try {
    parseHandshakeLine(line, [1], 'p')
  } catch (error) {
    if (isPluginError(error)) return error
  }
  throw new Error(`expected ${line} to be refused`)
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
