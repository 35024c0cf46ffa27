import { realpathSync } from 'node:fs'
import { resolve } from 'node:path'
import { isInsideFolder } from '@corral/manifest'
import { type CertificatePair, corralHandshake, messageEnvelopeBytes, resultBatchBytes } from '@corral/proto'
import { type LoadOptions, type Logger, PluginError } from '@corral/types'
import {
  type GoPluginClient,
  type ReattachConfig,
  reattachGoPlugin,
  startGoPlugin,
} from './go-plugin-client.js'
import { assertPluginUserCan, type PluginUser } from './plugin-user.js'

/**
 * Where a plugin that runs as a service of its own listens (go-plugin's ReattachConfig: `tcp` with
 * `tls` for one on another machine), and the address of this host it reaches the broker by.
 */
export interface ReattachTarget extends ReattachConfig {
  /**
   * Over TCP: the address of this host the plugin can reach; the broker serves HostService there on
   * a fresh port with the connection's mutual TLS. Default 127.0.0.1; any other address needs `tls`.
   */
  brokerHost?: string
}

/** What starting a plugin's process needs besides its load options. */
export interface LaunchSettings {
  logger: Logger
  /** AutoMTLS; off, a secret pair on the plugin's stdin instead. */
  autoMtls: boolean
  /** The certificate the host presents under AutoMTLS, the same for every start (see `createGrpcRunner`). */
  hostCertificate(): Promise<CertificatePair>
  /** The user plugin processes run as; unset, the host's. */
  pluginUser?: PluginUser
}

/**
 * Starts the plugin's process from its manifest entry and handshakes with it; bounded by the grant's
 * `init_timeout`. The entry is resolved at every start: a symlink swapped in after load cannot lead
 * out of the folder.
 */
export async function launchPlugin(options: LoadOptions, settings: LaunchSettings): Promise<GoPluginClient> {
  const { manifest, dir, grant } = options
  const { logger, autoMtls, pluginUser } = settings
  const name = manifest.name
  const entry = manifest.entry
  let command: string
  let args: string[]
  if ('binary' in entry) {
    command = resolveEntry(dir, entry.binary, name)
    args = entry.args
  } else if ('node' in entry) {
    command = process.execPath
    const script = resolveEntry(dir, entry.node, name)
    // startGoPlugin checks that the plugin user can enter the folder and run Node; that Node must
    // read this file is known here only.
    if (pluginUser !== undefined) assertPluginUserCan(pluginUser, 'read', script, name)
    args = [script, ...entry.args]
  } else {
    throw new PluginError('load_failed', 'a gRPC plugin needs a binary or node entry', { plugin: name })
  }
  // The manifest asks; only what the administrator granted is passed.
  const env: Record<string, string> = {}
  for (const key of entry.env) {
    const value = process.env[key]
    if (value !== undefined && grant.env.includes(key)) env[key] = value
  }
  const unauthenticated = grant.unauthenticated_transport
  if (unauthenticated) {
    logger.log(
      'warn',
      `plugin ${name} runs without peer authentication (its policy's unauthenticated_transport): any local process of the host's user can call the host as this plugin and call its services`,
      { plugin: name },
    )
  }
  // AutoMTLS by default; where the runner turns it off, a secret pair instead.
  const mtls = !unauthenticated && autoMtls
  return startGoPlugin({
    command,
    args,
    cwd: dir,
    env,
    handshake: corralHandshake,
    autoMtls: mtls,
    ...(mtls ? { hostCertificate: await settings.hostCertificate() } : {}),
    peerSecrets: !unauthenticated && !autoMtls,
    startTimeoutMs: grant.limits.init_timeout,
    maxReceiveBytes: receiveLimit(grant.limits.max_output_bytes),
    logger,
    name,
    ...(pluginUser === undefined ? {} : { user: pluginUser }),
  })
}

/** Connects to a plugin that runs as a service of its own; bounded by the grant's `init_timeout`. */
export function reattachPlugin(
  target: ReattachTarget,
  options: LoadOptions,
  logger: Logger,
): Promise<GoPluginClient> {
  const name = options.manifest.name
  if (target.protocolVersion !== corralHandshake.protocolVersion) {
    return Promise.reject(
      new PluginError(
        'incompatible',
        `the service speaks protocol version ${target.protocolVersion}, not ${corralHandshake.protocolVersion}`,
        { plugin: name },
      ),
    )
  }
  const { limits } = options.grant
  return reattachGoPlugin({
    ...target,
    name,
    logger,
    connectTimeoutMs: limits.init_timeout,
    maxReceiveBytes: receiveLimit(limits.max_output_bytes),
  })
}

/**
 * The largest message the host takes from a plugin's connection: a result of `max_output_bytes`, or
 * a batch of smaller ones as the SDK sends them, plus the fields around them.
 */
function receiveLimit(maxOutputBytes: number): number {
  return Math.max(maxOutputBytes, resultBatchBytes) + messageEnvelopeBytes
}

/**
 * The entry's real path (symlinks resolved), refused with `load_failed` naming the path when it is
 * missing or leads out of the plugin's (real) folder.
 */
function resolveEntry(dir: string, path: string, plugin: string): string {
  let realDir: string
  let real: string
  try {
    realDir = realpathSync(dir)
    real = realpathSync(resolve(dir, path))
  } catch {
    // Said here, plainly: otherwise the failure surfaces as the launcher's own exit code and message.
    throw new PluginError('load_failed', `no entry at ${path} (was the plugin built?)`, { plugin })
  }
  if (!isInsideFolder(realDir, real)) {
    throw new PluginError('load_failed', `entry ${path} leads outside the plugin folder (to ${real})`, {
      plugin,
    })
  }
  return real
}
