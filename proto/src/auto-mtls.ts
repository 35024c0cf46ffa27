import { generateKeyPair, randomBytes } from 'node:crypto'
import { promisify } from 'node:util'
import forge from 'node-forge'

/** A certificate and its private key, PEM. */
export interface CertificatePair {
  certPem: string
  keyPem: string
}

const generateRsaKeyPair = promisify(generateKeyPair)

/**
 * A fresh self-signed certificate for `localhost`, usable as client and server, as go-plugin's
 * AutoMTLS makes them: each side pins the other's certificate as its only trusted root. The key is
 * made by Node's native crypto (node-forge only builds and signs the certificate).
 */
export async function generateCertificate(): Promise<CertificatePair> {
  const { privateKey, publicKey } = await generateRsaKeyPair('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  })
  const cert = forge.pki.createCertificate()
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey)
  // A positive serial: the first byte's high bit clear.
  cert.serialNumber = `01${randomBytes(15).toString('hex')}`
  const now = Date.now()
  cert.validity.notBefore = new Date(now - 30_000)
  cert.validity.notAfter = new Date(now + 10 * 365 * 24 * 3600_000)
  const subject = [
    { name: 'commonName', value: 'localhost' },
    { name: 'organizationName', value: 'Corral' },
  ]
  cert.setSubject(subject)
  cert.setIssuer(subject)
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, keyCertSign: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
    { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }] },
  ])
  cert.sign(forge.pki.privateKeyFromPem(privateKey), forge.md.sha256.create())
  return { certPem: forge.pki.certificateToPem(cert), keyPem: privateKey }
}
