import { writeSync } from 'node:fs'
import {
  brokerService,
  type ConnInfo,
  controllerService,
  corralHandshake,
  formatHandshakeLine,
  generateCertificate,
  healthService,
  type MtlsMaterial,
  pluginService,
  ServingStatus,
  type StdioData,
  stdioService,
} from '@corral/proto'
import type { ServerDuplexStream, ServerUnaryCall, ServerWritableStream, sendUnaryData } from '@grpc/grpc-js'
import type { PluginDefinition } from './define-plugin.js'
import { HostConnection } from './host-client.js'
import { readPeerSecrets, watchHost } from './host-stdin.js'
import { PluginBroker } from './plugin-broker.js'
import { PluginRuntime } from './plugin-runtime.js'
import { createPluginServer, listen, stopServer } from './plugin-server.js'
import { StdioForwarder } from './stdio-forwarder.js'

/** Options of {@link serve}. */
export interface ServeOptions {
  /**
   * `unix` (the default) or `tcp` on 127.0.0.1 within `PLUGIN_MIN_PORT`–`PLUGIN_MAX_PORT`; the
   * environment variable `CORRAL_PLUGIN_NETWORK` sets it too.
   */
  network?: 'unix' | 'tcp'
}

/** A plugin being served. */
export interface ServedPlugin {
  /** Where the plugin listens. */
  readonly address: string
  /**
   * Stops the process: stops serving (calls in flight get a moment to finish), closes the
   * connection to the host and exits. What the host's go-plugin `Shutdown` (controller) does too;
   * the plugin's own `shutdown` is the host's to call before.
   */
  stop(): Promise<never>
}

/** go-plugin's words for a plugin binary run by hand, which Go plugins print too. */
const cookieMessage =
  'This binary is a plugin. These are not meant to be executed directly.\n' +
  'Please execute the program that consumes these plugins, which will\n' +
  'load any plugins automatically\n'

/**
 * Serves a plugin the way a go-plugin gRPC plugin serves: checks the magic cookie (with go-plugin's
 * message when run by hand), listens, prints the handshake line, and answers health, broker,
 * controller, stdio and Corral's PluginService until the host stops it or goes away.
 *
 * @example
 * import { definePlugin, serve } from '@corral/plugin-sdk'
 * await serve(definePlugin({ register, functions: { echo: (args) => args } }))
 */
export async function serve(plugin: PluginDefinition, options: ServeOptions = {}): Promise<ServedPlugin> {
  if (process.env[corralHandshake.magicCookieKey] !== corralHandshake.magicCookieValue) {
    process.stderr.write(cookieMessage)
    process.exit(1)
  }
  const clientCert = process.env.PLUGIN_CLIENT_CERT
  let tls: MtlsMaterial | undefined
  if (clientCert !== undefined && clientCert !== '') {
    tls = { peerCertPem: clientCert, ...(await generateCertificate()) }
  }
  const secrets = await readPeerSecrets()
  const broker = new PluginBroker(tls, secrets)
  const host = new HostConnection(broker)
  const stdio = new StdioForwarder()
  const server = createPluginServer(secrets)
  const stop = async (): Promise<never> => {
    await stopServer(server)
    host.close()
    process.exit(0)
  }

  server.addService(healthService, {
    check: (_call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<{ status: number }>) =>
      callback(null, { status: ServingStatus.SERVING }),
  })
  server.addService(brokerService, {
    startStream: (stream: ServerDuplexStream<ConnInfo, ConnInfo>) => broker.attach(stream),
  })
  server.addService(controllerService, {
    shutdown: (_call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<object>) => {
      callback(null, {})
      // After the answer has left: the host waits for it.
      setImmediate(() => void stop())
    },
  })
  server.addService(stdioService, {
    streamStdio: (stream: ServerWritableStream<unknown, StdioData>) => stdio.attach(stream),
  })
  server.addService(pluginService, new PluginRuntime(plugin, host).handlers())

  const network = options.network ?? (process.env.CORRAL_PLUGIN_NETWORK === 'tcp' ? 'tcp' : 'unix')
  const address = await listen(server, network, tls)
  // Straight to the pipe, at once: the line is out before stdout is captured below.
  writeSync(
    1,
    formatHandshakeLine({
      appVersion: corralHandshake.protocolVersion,
      network,
      address,
      ...(tls === undefined ? {} : { serverCertPem: tls.certPem }),
    }),
  )
  stdio.capture()
  watchHost(() => void stop())
  return { address, stop }
}
