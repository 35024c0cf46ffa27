import { generateKeyPair, randomBytes } from 'node:crypto'
import { promisify } from 'node:util'
import { type ChannelCredentials, credentials, ServerCredentials } from '@grpc/grpc-js'
import forge from 'node-forge'

/** A certificate and its private key, PEM. */
export interface CertificatePair {
  certPem: string
  keyPem: string
}

/** TLS material of one side of an AutoMTLS connection. */
export interface MtlsMaterial {
  /** The peer's certificate: the one root trusted. */
  peerCertPem: string
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

/**
 * Channel options every Corral connection starts from: no message size limit. The host narrows what
 * it receives from a plugin to the grant (see `resultBatchBytes`); a plugin trusts its host.
 */
const unlimited = { 'grpc.max_receive_message_length': -1, 'grpc.max_send_message_length': -1 }

/**
 * Client credentials and channel options for a plain connection (`tls` undefined) or an AutoMTLS
 * one, which trusts only the peer's certificate and presents our own.
 */
export function channelSecurity(tls: MtlsMaterial | undefined): {
  credentials: ChannelCredentials
  options: Record<string, string | number>
} {
  const options: Record<string, string | number> = { ...unlimited }
  if (tls === undefined) return { credentials: credentials.createInsecure(), options }
  // AutoMTLS certificates name localhost; the address is a socket path or an IP.
  options['grpc.ssl_target_name_override'] = 'localhost'
  options['grpc.default_authority'] = 'localhost'
  return {
    credentials: credentials.createSsl(
      Buffer.from(tls.peerCertPem),
      Buffer.from(tls.keyPem),
      Buffer.from(tls.certPem),
    ),
    options,
  }
}

/**
 * Server credentials for a plain server (`tls` undefined) or an AutoMTLS one, which demands a client
 * certificate and accepts only the peer's.
 */
export function serverSecurity(tls: MtlsMaterial | undefined): ServerCredentials {
  if (tls === undefined) return ServerCredentials.createInsecure()
  return ServerCredentials.createSsl(
    Buffer.from(tls.peerCertPem),
    [{ private_key: Buffer.from(tls.keyPem), cert_chain: Buffer.from(tls.certPem) }],
    true,
  )
}

/** Options for a grpc-js `Server` that serves Corral services. */
export const serverOptions = { 'grpc.max_receive_message_length': -1 } as const
