import { X509Certificate } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { generateCertificate } from './auto-mtls.js'

describe('generateCertificate', () => {
  it('makes a self-signed CA certificate for localhost, for server and client, valid from just before now', async () => {
    const { certPem, keyPem } = await generateCertificate()
    const cert = new X509Certificate(certPem)
    expect(cert.verify(cert.publicKey)).toBe(true)
    expect(cert.subject).toBe('CN=localhost\nO=Corral')
    expect(cert.issuer).toBe(cert.subject)
    expect(cert.subjectAltName).toBe('DNS:localhost')
    expect(cert.ca).toBe(true)
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'])
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1')
    expect(Date.parse(cert.validFrom)).toBeLessThan(Date.now())
    expect(Date.parse(cert.validTo)).toBeGreaterThan(Date.now() + 365 * 24 * 3600_000)
    expect(keyPem).toContain('BEGIN PRIVATE KEY')
    expect(new X509Certificate((await generateCertificate()).certPem).serialNumber).not.toBe(
      cert.serialNumber,
    )
  })
})
