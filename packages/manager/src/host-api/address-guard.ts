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

/** How the guard sees one address: the range that decides, and where that range was read. */
export interface AddressClass {
  /** An ipaddr.js range name (`unicast` is public), or the name of a form refused outright. */
  range: string
  /** The IPv4 address the range was read from, when the IPv6 address embeds one and is judged by it. */
  embeddedIpv4?: string
  /** Refused whatever the grant: no plugin has a reason to reach it, and what it reaches is unclear. */
  refused: boolean
}

const prefix = (cidr: string) => ipaddr.IPv6.parseCIDR(cidr)

/**
 * IPv6 forms whose last 32 bits are the IPv4 address a packet is delivered to, unchanged by any
 * choice of the network's operator: judged exactly as that IPv4 address would be.
 */
const judgedByEmbeddedIpv4 = [
  // IPv4-mapped (RFC 4291), in any spelling (::ffff:127.0.0.1 is ::ffff:7f00:1): a dual-stack
  // socket connects to the IPv4 address itself.
  prefix('::ffff:0:0/96'),
  // IPv4-translated (SIIT, RFC 2765): a stateless translator delivers it to exactly that address.
  prefix('::ffff:0:0:0/96'),
  // NAT64 well-known prefix (RFC 6052): on an IPv6-only network DNS64 answers every IPv4-only site
  // with such an address, so refusing the form would cut those hosts off; the gateway delivers to
  // the embedded address, and that decides (64:ff9b::7f00:1 is loopback).
  prefix('64:ff9b::/96'),
]

/** IPv6 forms refused whatever they embed and whatever the grant names. */
const refusedOutright: { name: string; range: [ipaddr.IPv6, number] }[] = [
  // IPv4-compatible ::a.b.c.d (deprecated by RFC 4291): nothing legitimate uses it, and stacks that
  // still tunnel it automatically deliver it to the embedded address.
  { name: 'IPv4-compatible', range: prefix('::/96') },
  // NAT64 local-use prefix (RFC 8215): the operator picks the prefix length inside the /48, so where
  // the IPv4 address sits, hence what is reached, cannot be known here; it exists for local networks.
  { name: 'NAT64 local-use', range: prefix('64:ff9b:1::/48') },
  // 6to4 (deprecated by RFC 7526): the embedded address is a site's router, not the destination,
  // and the packet goes to it or to whichever relay routing picks.
  { name: '6to4', range: prefix('2002::/16') },
  // Teredo (RFC 4380; the public service is gone): a relay sends it over UDP to the obfuscated
  // client IPv4 address, which the address's author chooses freely (127.0.0.1 as 80ff:fffe).
  { name: 'Teredo', range: prefix('2001::/32') },
]

/**
 * Classifies one IP address (either family) for the `http` guard. An IPv6 address that embeds an
 * IPv4 one is either judged by the embedded address or refused outright; `::` and `::1` keep their
 * own ranges. Throws on what is not an IP address.
 */
export function classifyAddress(text: string): AddressClass {
  const family = isIP(text)
  if (family === 4) return { range: ipaddr.IPv4.parse(text).range(), refused: false }
  if (family !== 6) throw new TypeError(`not an IP address: ${text}`)
  // ipaddr.js reads a dotted tail right after "::" as IPv4-mapped (::127.0.0.1 as ::ffff:127.0.0.1),
  // and Node's resolver prints IPv4-compatible addresses just so; the WHATWG URL parser reads the
  // tail as the last 32 bits, as RFC 4291 does, and prints hex, which ipaddr.js reads right.
  const v6 = ipaddr.IPv6.parse(new URL(`http://[${text}]`).hostname.slice(1, -1))
  const own = v6.range()
  if (own === 'unspecified' || own === 'loopback') return { range: own, refused: false }
  if (judgedByEmbeddedIpv4.some((form) => v6.match(form))) {
    const embedded = new ipaddr.IPv4(v6.toByteArray().slice(12))
    return { range: embedded.range(), embeddedIpv4: embedded.toString(), refused: false }
  }
  const form = refusedOutright.find((f) => v6.match(f.range))
  if (form !== undefined) return { range: form.name, refused: true }
  return { range: own, refused: false }
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
 * private, link-local, carrier-grade NAT, multicast and reserved addresses are refused unless the
 * matching scope names the host exactly (no `*`). IPv6 forms that embed an IPv4 address are judged
 * by that address or refused whatever the grant, as {@link classifyAddress} says.
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
    let seen: AddressClass
    try {
      seen = classifyAddress(address)
    } catch {
      throw new PluginError('permission_denied', `${host} resolved to an unusable address ${address}`, {
        plugin,
      })
    }
    const what =
      seen.embeddedIpv4 === undefined
        ? `${address} (${seen.range})`
        : `${address}, which embeds ${seen.embeddedIpv4} (${seen.range})`
    if (seen.refused) {
      throw new PluginError(
        'permission_denied',
        `${host} resolves to ${what}, an IPv6 transition form no plugin may reach`,
        { plugin },
      )
    }
    if (seen.range !== 'unicast' && !grantedByName) {
      throw new PluginError(
        'permission_denied',
        `${host} resolves to ${what}; non-public addresses need a grant naming the host`,
        { plugin },
      )
    }
  }
  return { url, host, port, addresses }
}
