import { X509Certificate } from 'node:crypto'
import { PluginError } from '@corral/types'

/** The line a go-plugin plugin prints on stdout once it serves: `core|app|network|address|protocol|cert`. */
export interface HandshakeLine {
  /** go-plugin's core protocol version; always 1. */
  coreVersion: number
  /** The application protocol version the plugin chose from `PLUGIN_PROTOCOL_VERSIONS`. */
  appVersion: number
  network: 'unix' | 'tcp'
  address: string
  protocol: 'grpc'
  /** The plugin's AutoMTLS server certificate (PEM), when it sent one. */
  serverCertPem?: string
}

/** go-plugin's core protocol version, the first field of every handshake line. */
export const coreProtocolVersion = 1

/**
 * Parses a handshake line, checking every field; a malformed one is a `load_failed` error naming the
 * field and showing the line, an unsupported version or protocol is `incompatible`.
 */
export function parseHandshakeLine(
  line: string,
  appVersions: readonly number[],
  plugin: string,
): HandshakeLine {
  const shown = JSON.stringify(line.length > 200 ? `${line.slice(0, 200)}…` : line)
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

/** go-plugin sends the DER certificate in base64 without padding; newer versions and Corral's SDK alike. */
function certificatePem(base64: string, fail: (code: 'load_failed', message: string) => PluginError): string {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64))
    throw fail('load_failed', 'the server certificate is not base64')
  try {
    return new X509Certificate(Buffer.from(base64, 'base64')).toString()
  } catch (error) {
    throw fail('load_failed', `the server certificate does not parse (${(error as Error).message})`)
  }
}
