import { isIP } from 'node:net'
import { matchScope } from '@corral/manifest'
import type { EffectiveGrant } from '@corral/types'
import { PluginError } from '@corral/types'
import ipaddr from 'ipaddr.js'
import type { HostResolver } from './sandbox-dependencies.js'

/** Where a checked request may connect: the URL's host and the addresses that passed the check. */
export interface CheckedTarget {
  url: URL
  /** The host name (or IP literal, without brackets) the request names. */
  host: string
  port: number
  addresses: { address: string; family: 4 | 6 }[]
}

const defaultPorts: Record<string, number> = { 'http:': 80, 'https:': 443 }

/** Splits an `http` scope glob into host and port globs; no port means the scheme's default port. */
function splitScope(pattern: string, defaultPort: number): { host: string; port: string } {
  const bracket = pattern.match(/^\[([^\]]*)\](?::(.*))?$/)
  if (bracket) return { host: bracket[1] ?? '', port: bracket[2] ?? String(defaultPort) }
  const colon = pattern.lastIndexOf(':')
  // More than one ':' without brackets is a bare IPv6 address, not host:port.
  if (colon === -1 || pattern.indexOf(':') !== colon) return { host: pattern, port: String(defaultPort) }
  return { host: pattern.slice(0, colon), port: pattern.slice(colon + 1) }
}

/**
 * Which `http` scope globs match `host:port`. A glob is `host` (the scheme's default port only),
 * `host:port`, or `host:*`; the host part may use `*` (`*.example.com`).
 */
function matchingScopes(grant: EffectiveGrant, host: string, port: number, defaultPort: number) {
  const matches: { hostGlob: string }[] = []
  for (const permission of grant.permissions) {
    if (permission.type !== 'http') continue
    for (const pattern of permission.scope) {
      const scope = splitScope(pattern.toLowerCase(), defaultPort)
      if (matchScope(scope.host, host) && matchScope(scope.port, String(port)))
        matches.push({ hostGlob: scope.host })
    }
  }
  return matches
}

/** Parses the URL a plugin gave, once; refuses what is not plain http(s) to a host. */
export function parseRequestUrl(raw: string): URL {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new PluginError('invalid_argument', `not a URL: ${raw.slice(0, 200)}`)
  }
  if (!(url.protocol in defaultPorts)) {
    throw new PluginError('invalid_argument', `only http and https URLs are allowed, not ${url.protocol}`)
  }
  if (url.username !== '' || url.password !== '') {
    // "https://granted.example@evil.example/" names evil.example; credentials go in headers.
    throw new PluginError(
      'invalid_argument',
      'URLs with credentials (user@host) are not allowed; send an Authorization header',
    )
  }
  return url
}

/**
 * Checks a request target against the grant and resolves it, once: the host and port must match
 * an `http` scope, and every address the name resolves to must be public unicast — loopback,
 * private, link-local, carrier-grade NAT, multicast, reserved, and IPv6 forms that embed an IPv4
 * address (6to4, NAT64) are refused unless the matching scope names the host exactly (no `*`).
 * The caller must connect to the returned addresses only, so a second DNS answer cannot swap them.
 */
export async function checkTarget(
  url: URL,
  grant: EffectiveGrant,
  resolve: HostResolver,
  plugin: string,
): Promise<CheckedTarget> {
  const defaultPort = defaultPorts[url.protocol] ?? 0
  const port = url.port === '' ? defaultPort : Number(url.port)
  // WHATWG URL parsing already turned 2130706433, 0x7f000001 and 0177.0.0.1 into 127.0.0.1.
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname
  const matches = matchingScopes(grant, host, port, defaultPort)
  if (matches.length === 0) {
    throw new PluginError('permission_denied', `http to ${host}:${port} is not granted`, { plugin })
  }
  const grantedByName = matches.some((m) => !m.hostGlob.includes('*'))
  let addresses: CheckedTarget['addresses']
  if (isIP(host) !== 0) {
    addresses = [{ address: host, family: isIP(host) as 4 | 6 }]
  } else {
    try {
      addresses = await resolve(host)
    } catch (error) {
      throw new PluginError('unavailable', `cannot resolve ${host}: ${(error as Error).message}`, {
        cause: error,
      })
    }
    if (addresses.length === 0) throw new PluginError('unavailable', `${host} has no address`)
  }
  for (const { address } of addresses) {
    let range: string
    try {
      range = ipaddr.process(address).range()
    } catch {
      throw new PluginError('permission_denied', `${host} resolved to an unusable address ${address}`, {
        plugin,
      })
    }
    if (range !== 'unicast' && !grantedByName) {
      throw new PluginError(
        'permission_denied',
        `${host} resolves to ${address} (${range}); non-public addresses need a grant naming the host`,
        { plugin },
      )
    }
  }
  return { url, host, port, addresses }
}
