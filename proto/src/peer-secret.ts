import { randomBytes, timingSafeEqual } from 'node:crypto'
import {
  InterceptingCall,
  type Interceptor,
  type Metadata,
  ServerInterceptingCall,
  type ServerInterceptor,
  status,
} from '@grpc/grpc-js'

/**
 * The secrets of one plugin process where TLS is off: `host` is what the host presents on every call
 * into the plugin, `plugin` what the plugin presents on every call to the host's broker services.
 * Made fresh for every process, so a secret names one plugin (and one run of it).
 */
export interface PeerSecrets {
  host: string
  plugin: string
}

/** The call metadata key that carries the caller's secret. */
export const peerSecretMetadataKey = 'corral-peer-secret'

/**
 * The environment variable the host sets to `stdin` when it writes a plugin's {@link PeerSecrets} as
 * the first line of its stdin. Not the secrets themselves in the environment: every process of the
 * same user can read `/proc/<pid>/environ`, while a pipe's contents go to its reader only.
 */
export const peerSecretsEnv = 'CORRAL_PEER_SECRETS'

/** How many random bytes a secret holds: 256 bits, 43 characters of base64url. */
const secretBytes = 32

/** A fresh pair of 256-bit secrets. */
export function generatePeerSecrets(): PeerSecrets {
  return {
    host: randomBytes(secretBytes).toString('base64url'),
    plugin: randomBytes(secretBytes).toString('base64url'),
  }
}

/** The line the host writes to the plugin's stdin (with its newline). */
export function formatPeerSecretsLine(secrets: PeerSecrets): string {
  return `${secrets.host} ${secrets.plugin}\n`
}

/**
 * Reads {@link formatPeerSecretsLine}'s line (without its newline); undefined if it is not one: two
 * secrets of {@link secretBytes} in base64url (43 characters each).
 */
export function parsePeerSecretsLine(line: string): PeerSecrets | undefined {
  const match = /^([A-Za-z0-9_-]{43}) ([A-Za-z0-9_-]{43})$/.exec(line.trim())
  return match === null ? undefined : { host: match[1] as string, plugin: match[2] as string }
}

/** A client interceptor that sends `secret` with every call. */
export function sendPeerSecret(secret: string): Interceptor {
  return (options, nextCall) =>
    new InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        metadata.set(peerSecretMetadataKey, secret)
        next(metadata, listener)
      },
    })
}

/**
 * A server interceptor that refuses, with `UNAUTHENTICATED` and before any handler runs, every call
 * that does not carry `secret`: whoever can reach the socket is not thereby the peer.
 */
export function requirePeerSecret(secret: string): ServerInterceptor {
  const expected = Buffer.from(secret)
  return (_method, call) => {
    let refused = false
    return new ServerInterceptingCall(call, {
      start(next) {
        next({
          onReceiveMetadata(metadata, nextMetadata) {
            if (carries(metadata, expected)) {
              nextMetadata(metadata)
              return
            }
            refused = true
            call.sendStatus({
              code: status.UNAUTHENTICATED,
              details: 'the caller did not present this connection’s peer secret',
            })
          },
          // Nothing of a refused call reaches a handler.
          onReceiveMessage(message, nextMessage) {
            if (!refused) nextMessage(message)
          },
          onReceiveHalfClose(nextHalfClose) {
            if (!refused) nextHalfClose()
          },
        })
      },
    })
  }
}

function carries(metadata: Metadata, expected: Buffer): boolean {
  const [given] = metadata.get(peerSecretMetadataKey)
  if (typeof given !== 'string') return false
  const bytes = Buffer.from(given)
  return bytes.length === expected.length && timingSafeEqual(bytes, expected)
}
