import { X509Certificate } from 'node:crypto'
import { PluginError } from '@corral/types'

/**
 * The line a go-plugin plugin prints on stdout once it serves:
 * `core|app|network|address|protocol|cert`, e.g. `1|1|unix|/tmp/plugin42.sock|grpc|MIIB…`.
 */
export interface HandshakeLine {
  /** go-plugin's core protocol version; always {@link coreProtocolVersion}. */
  coreVersion: number
  /** The application protocol version the plugin chose from `PLUGIN_PROTOCOL_VERSIONS`. */
  appVersion: number
  network: 'unix' | 'tcp'
  /** A socket path (`unix`) or `host:port` (`tcp`). */
  address: string
  protocol: 'grpc'
  /** The plugin's AutoMTLS server certificate (PEM), when it sent one. */
  serverCertPem?: string
}

/** go-plugin's core protocol version, the first field of every handshake line. */
export const coreProtocolVersion = 1

/** A handshake line longer than this is shown cut in an error message. */
const shownLineChars = 200

/**
 * The plugin side: the handshake line (with its newline) announcing where it serves. The
 * certificate travels as its DER in base64 without padding, as go-plugin writes it. A field that
 * would break the line (an address with "|" or white space, a certificate that does not parse) is
 * an `invalid_argument` error.
 *
 * @example
 * process.stdout.write(formatHandshakeLine({ appVersion: 1, network: 'unix', address: socketPath }))
 */
export function formatHandshakeLine(
  line: Pick<HandshakeLine, 'appVersion' | 'network' | 'address' | 'serverCertPem'>,
): string {
  if (!Number.isInteger(line.appVersion) || line.appVersion < 0) {
    throw new PluginError(
      'invalid_argument',
      `handshake: app protocol version ${line.appVersion} is not a whole number`,
    )
  }
  if (line.address === '' || /[|\s]/.test(line.address)) {
    throw new PluginError(
      'invalid_argument',
      `handshake: address ${JSON.stringify(line.address)} is empty or holds "|" or white space`,
    )
  }
  const cert = line.serverCertPem === undefined ? '' : certificateBase64(line.serverCertPem)
  return `${coreProtocolVersion}|${line.appVersion}|${line.network}|${line.address}|grpc|${cert}\n`
}

/**
 * The host side: parses a handshake line, checking every field; a malformed one is a `load_failed`
 * error naming the field and showing the line, an unsupported version or protocol is
 * `incompatible`.
 */
export function parseHandshakeLine(
  line: string,
  appVersions: readonly number[],
  plugin: string,
): HandshakeLine {
  const shown = JSON.stringify(line.length > shownLineChars ? `${line.slice(0, shownLineChars)}…` : line)
  const fail = (code: 'load_failed' | 'incompatible', message: string) =>
    new PluginError(code, `handshake: ${message} in ${shown}`, { plugin })
  const parts = line.trim().split('|')
  if (parts.length < 5 || parts.length > 6) {
    throw fail('load_failed', `expected 5 or 6 fields separated by "|", got ${parts.length}`)
  }
  const [core = '', app = '', network = '', address = '', protocol = '', cert = ''] = parts
  const integer = (text: string, field: string) => {
    if (!/^\d{1,9}$/.test(text)) throw fail('load_failed', `${field} ${JSON.stringify(text)} is not a number`)
    return Number(text)
  }
  const coreVersion = integer(core, 'core protocol version')
  if (coreVersion !== coreProtocolVersion) {
    throw fail('incompatible', `core protocol version ${coreVersion} is not ${coreProtocolVersion}`)
  }
  const appVersion = integer(app, 'app protocol version')
  if (!appVersions.includes(appVersion)) {
    throw fail('incompatible', `app protocol version ${appVersion} is not one of ${appVersions.join(', ')}`)
  }
  if (network !== 'unix' && network !== 'tcp') {
    throw fail('load_failed', `network ${JSON.stringify(network)} is neither unix nor tcp`)
  }
  if (address === '') throw fail('load_failed', 'the address is empty')
  if (network === 'tcp' && !/^[^\s]+:\d{1,5}$/.test(address)) {
    throw fail('load_failed', `tcp address ${JSON.stringify(address)} is not host:port`)
  }
  if (protocol !== 'grpc') {
    throw fail(
      protocol === 'netrpc' ? 'incompatible' : 'load_failed',
      `protocol ${JSON.stringify(protocol)} is not grpc${protocol === 'netrpc' ? ' (net/rpc plugins are not supported)' : ''}`,
    )
  }
  const result: HandshakeLine = { coreVersion, appVersion, network, address, protocol }
  if (cert !== '') result.serverCertPem = certificatePem(cert, fail)
  return result
}

/** A PEM certificate as the handshake line carries it: its DER in base64, without padding. */
function certificateBase64(pem: string): string {
  let der: Buffer
  try {
    der = new X509Certificate(pem).raw
  } catch (error) {
    throw new PluginError(
      'invalid_argument',
      `handshake: the server certificate does not parse (${(error as Error).message})`,
    )
  }
  return der.toString('base64').replace(/=+$/, '')
}

/** The handshake line's certificate as PEM; go-plugin's older versions pad the base64, newer ones do not. */
function certificatePem(base64: string, fail: (code: 'load_failed', message: string) => PluginError): string {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64))
    throw fail('load_failed', 'the server certificate is not base64')
  try {
    return new X509Certificate(Buffer.from(base64, 'base64')).toString()
  } catch (error) {
    throw fail('load_failed', `the server certificate does not parse (${(error as Error).message})`)
  }
}
