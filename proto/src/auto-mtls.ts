import { KeyObject, randomBytes, webcrypto, X509Certificate } from 'node:crypto'
import { type ChannelCredentials, credentials, ServerCredentials } from '@grpc/grpc-js'
import type * as Asn1js from 'asn1js'
import type * as Pkijs from 'pkijs'

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

/**
 * ECDSA P-256 (go-plugin's own AutoMTLS uses elliptic curves too): a key is made in well under a
 * millisecond, where an RSA-2048 key costs tens to hundreds, paid on both sides of every plugin start.
 */
const keyAlgorithm = { name: 'ECDSA', namedCurve: 'P-256' } as const
const tenYearsMs = 10 * 365 * 24 * 3600_000
/**
 * pkijs and asn1js, loaded on the first certificate: importing them costs a plugin process some
 * 100 ms at start, which only AutoMTLS needs to pay.
 */
let x509: Promise<{ asn1js: typeof Asn1js; pkijs: typeof Pkijs; engine: Pkijs.CryptoEngine }> | undefined

function loadX509() {
  x509 ??= Promise.all([import('asn1js'), import('pkijs')]).then(([asn1js, pkijs]) => ({
    asn1js,
    pkijs,
    // pkijs signs with Node's Web Crypto.
    engine: new pkijs.CryptoEngine({
      name: 'node',
      crypto: webcrypto as unknown as ConstructorParameters<typeof Pkijs.CryptoEngine>[0]['crypto'],
    }),
  }))
  return x509
}

/**
 * A fresh self-signed certificate for `localhost`, usable as client and server, as go-plugin's
 * AutoMTLS makes them: each side pins the other's certificate as its only trusted root.
 */
export async function generateCertificate(): Promise<CertificatePair> {
  const { asn1js, pkijs, engine } = await loadX509()
  /** An X.509 extension carrying `value`, DER-encoded. */
  const extension = (extnID: string, critical: boolean, value: { toSchema(): Asn1js.BaseBlock }) =>
    new pkijs.Extension({ extnID, critical, extnValue: value.toSchema().toBER(false) })
  const keys = await webcrypto.subtle.generateKey(keyAlgorithm, true, ['sign', 'verify'])
  const cert = new pkijs.Certificate()
  cert.version = 2
  // A positive serial: the first byte's high bit clear.
  cert.serialNumber = new asn1js.Integer({
    valueHex: Buffer.from(`01${randomBytes(15).toString('hex')}`, 'hex'),
  })
  for (const [type, value] of [
    ['2.5.4.3', 'localhost'], // commonName
    ['2.5.4.10', 'Corral'], // organizationName
  ] as const) {
    const attribute = new pkijs.AttributeTypeAndValue({ type, value: new asn1js.Utf8String({ value }) })
    cert.subject.typesAndValues.push(attribute)
    cert.issuer.typesAndValues.push(attribute)
  }
  const now = Date.now()
  cert.notBefore.value = new Date(now - 30_000)
  cert.notAfter.value = new Date(now + tenYearsMs)
  // keyUsage bits: digitalSignature (0) and keyCertSign (5), in one byte with two unused bits.
  const keyUsage = new asn1js.BitString({ valueHex: new Uint8Array([0b1000_0100]), unusedBits: 2 })
  cert.extensions = [
    extension('2.5.29.19', true, new pkijs.BasicConstraints({ cA: true })),
    extension('2.5.29.15', true, { toSchema: () => keyUsage }),
    extension(
      '2.5.29.37',
      false,
      new pkijs.ExtKeyUsage({ keyPurposes: ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'] }), // server, client auth
    ),
    extension(
      '2.5.29.17',
      false,
      new pkijs.GeneralNames({ names: [new pkijs.GeneralName({ type: 2, value: 'localhost' })] }),
    ),
  ]
  await cert.subjectPublicKeyInfo.importKey(keys.publicKey as never, engine)
  await cert.sign(keys.privateKey as never, 'SHA-256', engine)
  const der = Buffer.from(cert.toSchema(true).toBER(false))
  return {
    certPem: new X509Certificate(der).toString(),
    keyPem: KeyObject.from(keys.privateKey).export({ type: 'pkcs8', format: 'pem' }) as string,
  }
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
