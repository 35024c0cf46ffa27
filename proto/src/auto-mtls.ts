import { generateKeyPair, randomBytes, sign, X509Certificate } from 'node:crypto'
import { promisify } from 'node:util'
import { type ChannelCredentials, credentials, ServerCredentials } from '@grpc/grpc-js'
import {
  bitString,
  booleanTrue,
  explicit,
  implicit,
  integer,
  objectIdentifier,
  octetString,
  sequence,
  set,
  utcTime,
  utf8String,
} from './der.js'

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

const generateEcKeyPair = promisify(generateKeyPair)
/** How long a certificate is valid: it lives as long as one plugin process, so expiry never matters. */
const validityMs = 10 * 365 * 24 * 3600_000
/** A certificate is valid from this long before it was made, for a peer whose clock is behind. */
const clockSkewMs = 30_000
/** Random bytes of the serial number; with its leading 0x01, 16 bytes (RFC 5280 allows 20). */
const serialRandomBytes = 15

/**
 * A fresh self-signed certificate for `localhost`, usable as client and server, as go-plugin's
 * AutoMTLS makes them: each side pins the other's certificate as its only trusted root. The key is
 * ECDSA P-256 (go-plugin's own AutoMTLS uses elliptic curves too), made in well under a millisecond
 * where an RSA-2048 key costs tens to hundreds, on both sides of every plugin start. Node makes the
 * key and the signature; the certificate around them (RFC 5280) is encoded in `der.ts`.
 */
export async function generateCertificate(): Promise<CertificatePair> {
  const { publicKey, privateKey } = await generateEcKeyPair('ec', { namedCurve: 'P-256' })
  const name = sequence(
    ...[
      ['2.5.4.3', 'localhost'], // commonName
      ['2.5.4.10', 'Corral'], // organizationName
    ].map(([type, value]) => set(sequence(objectIdentifier(type as string), utf8String(value as string)))),
  )
  const ecdsaWithSha256 = sequence(objectIdentifier('1.2.840.10045.4.3.2'))
  const extension = (id: string, critical: boolean, value: Uint8Array) =>
    sequence(objectIdentifier(id), ...(critical ? [booleanTrue] : []), octetString(value))
  const now = Date.now()
  const tbs = sequence(
    explicit(0, integer(Uint8Array.of(2))), // v3
    // A positive serial: the first byte's high bit clear.
    integer(Buffer.concat([Uint8Array.of(1), randomBytes(serialRandomBytes)])),
    ecdsaWithSha256,
    name,
    sequence(utcTime(new Date(now - clockSkewMs)), utcTime(new Date(now + validityMs))),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
    explicit(
      3,
      sequence(
        // basicConstraints: a CA, as each side's certificate is the other's only root.
        extension('2.5.29.19', true, sequence(booleanTrue)),
        // keyUsage: digitalSignature (bit 0) and keyCertSign (bit 5), two bits unused.
        extension('2.5.29.15', true, bitString(Uint8Array.of(0b1000_0100), 2)),
        // extKeyUsage: serverAuth, clientAuth.
        extension(
          '2.5.29.37',
          false,
          sequence(objectIdentifier('1.3.6.1.5.5.7.3.1'), objectIdentifier('1.3.6.1.5.5.7.3.2')),
        ),
        // subjectAltName: dNSName (context tag 2) localhost.
        extension('2.5.29.17', false, sequence(implicit(2, Buffer.from('localhost', 'ascii')))),
      ),
    ),
  )
  const signature = sign('sha256', tbs, { key: privateKey, dsaEncoding: 'der' })
  return {
    certPem: new X509Certificate(sequence(tbs, ecdsaWithSha256, bitString(signature))).toString(),
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
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
