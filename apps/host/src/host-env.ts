import { type LogLevel, logLevels, PluginError } from '@corral/types'

/**
 * Which proxies' `X-Forwarded-*` headers the host believes (fastify's `trustProxy`): all, those
 * at the addresses listed, or those the function accepts (`hop` 0 is the one that connected).
 */
export type TrustProxy = boolean | string[] | ((address: string, hop: number) => boolean)

/** What the host reads from its environment itself, beside what `main.ts` passes as options. */
export interface HostEnv {
  /** `CORRAL_LOG_LEVEL`: `trace`, `debug`, `info`, `warn` or `error`. */
  logLevel?: LogLevel
  /** `CORRAL_TRUST_PROXY`: `true`, a hop count, or a comma-separated list of proxy addresses or CIDR ranges. */
  trustProxy?: TrustProxy
}

/** An address, a CIDR range, or one of proxy-addr's names for ranges. */
const proxyAddress = /^(loopback|linklocal|uniquelocal|[0-9a-fA-F:.]+(\/\d{1,3})?)$/

/**
 * Reads `CORRAL_LOG_LEVEL` and `CORRAL_TRUST_PROXY` (unset or empty: not given). A value that is
 * not one of the forms allowed throws `invalid_argument` naming the variable: a typo must not
 * start a host that trusts what it should not, or logs what no one reads.
 *
 * @example
 * readHostEnv({ CORRAL_TRUST_PROXY: '10.0.0.0/8, 127.0.0.1' }) // { trustProxy: ['10.0.0.0/8', '127.0.0.1'] }
 */
export function readHostEnv(env: NodeJS.ProcessEnv = process.env): HostEnv {
  const out: HostEnv = {}
  const level = env.CORRAL_LOG_LEVEL?.trim().toLowerCase()
  if (level !== undefined && level !== '') {
    if (!logLevels.includes(level as LogLevel))
      throw new PluginError(
        'invalid_argument',
        `CORRAL_LOG_LEVEL is ${env.CORRAL_LOG_LEVEL}; it is one of ${logLevels.join(', ')}`,
      )
    out.logLevel = level as LogLevel
  }
  const trust = env.CORRAL_TRUST_PROXY?.trim()
  if (trust !== undefined && trust !== '') out.trustProxy = trustProxyOf(trust)
  return out
}

function trustProxyOf(value: string): TrustProxy {
  if (value === 'true') return true
  if (value === 'false') return false
  if (/^\d+$/.test(value)) {
    // The hops nearest the host, whatever their address (as Express reads a number). fastify 5
    // takes a number as "trust none", since a client that reaches the host directly can then
    // forge the header: a count suits a host reachable only through its proxies.
    const hops = Number(value)
    return (_address, hop) => hop < hops
  }
  const addresses = value.split(',').map((a) => a.trim())
  const bad = addresses.filter((a) => !proxyAddress.test(a))
  if (bad.length > 0)
    throw new PluginError(
      'invalid_argument',
      `CORRAL_TRUST_PROXY is true, a hop count, or proxy addresses and CIDR ranges separated by commas; not ${bad.map((a) => JSON.stringify(a)).join(', ')}`,
    )
  return addresses
}
