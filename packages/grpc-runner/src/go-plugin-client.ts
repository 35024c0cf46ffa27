import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import {
  type CertificatePair,
  channelSecurity,
  controllerService,
  deadlineIn,
  formatPeerSecretsLine,
  generateCertificate,
  generatePeerSecrets,
  healthService,
  type MtlsMaterial,
  type PeerSecrets,
  parseHandshakeLine,
  peerSecretsEnv,
  ServingStatus,
  StdioChannel,
  type StdioData,
  sendPeerSecret,
  stdioService,
  unary,
} from '@corral/proto'
import type { Logger } from '@corral/types'
import { PluginError, stderrLogger } from '@corral/types'
import { Client, Metadata, status } from '@grpc/grpc-js'
import { GrpcBroker } from './grpc-broker.js'
import { LineReader, logLineLimits } from './plugin-log.js'
import { type PluginProcess, type ProcessExit, spawnPluginProcess } from './plugin-process.js'
import {
  assertPluginUserCan,
  checkPluginUser,
  createPluginUserFolders,
  type PluginFolders,
  type PluginUser,
} from './plugin-user.js'

/** go-plugin's handshake config: both sides must agree on it. */
export interface HandshakeConfig {
  /** The application protocol version the host offers. */
  protocolVersion: number
  magicCookieKey: string
  magicCookieValue: string
}

/** Options of {@link startGoPlugin}. */
export interface StartGoPluginOptions {
  command: string
  args?: readonly string[]
  cwd?: string
  handshake: HandshakeConfig
  /**
   * Variables the plugin gets besides go-plugin's own. Nothing of the host's environment is passed
   * unless listed here: a plugin never sees the host's secrets by accident.
   */
  env?: Record<string, string>
  /** Hand the plugin the host's certificate and speak TLS with the plugin's certificate pinned. */
  autoMtls?: boolean
  /**
   * With `autoMtls`: the certificate the host presents. Default: a fresh one for this start. A
   * runner makes one and presents it to every plugin it starts (see `createGrpcRunner`).
   */
  hostCertificate?: CertificatePair
  /**
   * Without TLS: hand the plugin a fresh pair of secrets on its stdin (never in its environment,
   * which every process of the same user can read), send the host's with every call into the
   * plugin, and refuse every call to the broker's services that lacks the plugin's. For Corral SDK
   * plugins; a stock go-plugin plugin cannot send it. Not with `autoMtls`, which authenticates
   * both ends already.
   */
  peerSecrets?: boolean
  /** How long the plugin has to print its handshake line. Default 10 s. */
  startTimeoutMs?: number
  /** TCP ports the plugin may listen on, where it listens on TCP. */
  portRange?: { min: number; max: number }
  /** Where the plugin puts its unix socket. Default: a fresh private temporary folder, removed at stop. */
  unixSocketDir?: string
  /**
   * Run the plugin as this user and group (no supplementary groups) instead of the host's. Its
   * socket folder is made for it (mode 0700); the host's broker sockets are in a folder of the host
   * that it can enter but not list, each handed to it. Its program and `cwd` must be reachable by it,
   * else the start fails with `load_failed` naming the path and the user.
   */
  user?: PluginUser
  logger?: Logger
  /** Names the plugin in errors and logs. Default: the command. */
  name?: string
  /** The largest message taken from the plugin; larger ones are refused before they are read whole. Default: no limit. */
  maxReceiveBytes?: number
}

/** What {@link reattachGoPlugin} needs to reach a plugin already running: go-plugin's ReattachConfig. */
export interface ReattachConfig {
  network: 'unix' | 'tcp'
  address: string
  /** The plugin's process id, when it runs on this machine: the host then watches it and can kill it. */
  pid?: number
  protocolVersion: number
  /** The AutoMTLS (or provisioned) material: the plugin's certificate and the host's own pair. */
  tls?: MtlsMaterial
  /** The secrets the plugin was started with, where it runs without TLS (`peerSecrets`). */
  secrets?: PeerSecrets
}

/**
 * A connected go-plugin plugin. Its lifecycle verbs: `stop` a process this host started (it owns
 * it), `disconnect` from one it reattached to (it does not own it); neither rejects.
 */
export interface GoPluginClient {
  readonly name: string
  /** The plugin's process id (absent for a reattached service without one). */
  readonly pid: number | undefined
  readonly protocolVersion: number
  /** One grpc-js client over the plugin's connection: make any service's calls with it. */
  readonly rpc: Client
  /** The connection itself: pass it as `channelOverride` to generated grpc-js clients. */
  readonly channel: ReturnType<Client['getChannel']>
  readonly broker: GrpcBroker
  /** How to reattach to this plugin from another host process. */
  readonly reattachConfig: ReattachConfig
  /** Settles when the plugin process exits (for a reattached plugin with a pid, when it is gone). */
  readonly exited: Promise<ProcessExit>
  /** Whether the plugin answers `grpc.health.v1.Health/Check` for service `plugin` with SERVING. */
  health(timeoutMs: number): Promise<boolean>
  /**
   * Stops the plugin: `GRPCController/Shutdown`, then `graceMs` to exit, then SIGKILL to its whole
   * process group. Never rejects.
   */
  stop(graceMs?: number): Promise<void>
  /**
   * Closes the connection and the broker and leaves the plugin running: for a plugin this host does
   * not own, such as a service of its own it reattached to. Never rejects.
   */
  disconnect(): Promise<void>
}

const defaultStartTimeoutMs = 10_000
/** How long `stop()` gives a plugin to exit after Shutdown, unless told. */
const defaultStopGraceMs = 2000
/** How often a reattached service's pid is checked for life. */
const pidPollMs = 500

/**
 * Starts a go-plugin gRPC plugin and connects to it: launch with the magic cookie and a minimal
 * environment, handshake, optional AutoMTLS, broker, stdio forwarding.
 *
 * @example
 * const plugin = await startGoPlugin({
 *   command: './kv-plugin',
 *   handshake: { protocolVersion: 1, magicCookieKey: 'KV_PLUGIN', magicCookieValue: 'hello' },
 *   autoMtls: true,
 * })
 * const kv = new KvClient('unused', credentials.createInsecure(), { channelOverride: plugin.channel })
 * await plugin.stop()
 */
export async function startGoPlugin(options: StartGoPluginOptions): Promise<GoPluginClient> {
  const name = options.name ?? options.command
  const logger = options.logger ?? stderrLogger
  const { user } = options
  let folders: PluginFolders
  try {
    folders =
      user === undefined
        ? sameUserFolders(options.unixSocketDir)
        : pluginUserFolders(user, options, name, logger)
  } catch (error) {
    throw PluginError.from(error, 'load_failed', name)
  }
  const { socketDir } = folders
  let hostPair: CertificatePair | undefined
  let proc: PluginProcess | undefined
  try {
    if (options.autoMtls && options.peerSecrets) {
      throw new PluginError(
        'invalid_argument',
        'autoMtls and peerSecrets are two ways to do one thing: pick one',
        {
          plugin: name,
        },
      )
    }
    if (options.autoMtls) hostPair = options.hostCertificate ?? (await generateCertificate())
    const secrets = options.peerSecrets ? generatePeerSecrets() : undefined
    const env: Record<string, string> = {
      ...options.env,
      [options.handshake.magicCookieKey]: options.handshake.magicCookieValue,
      PLUGIN_PROTOCOL_VERSIONS: String(options.handshake.protocolVersion),
      PLUGIN_UNIX_SOCKET_DIR: socketDir,
      // go-plugin before 1.5 makes its socket in the temporary folder: keep it in the private one.
      TMPDIR: socketDir,
    }
    if (options.portRange !== undefined) {
      env.PLUGIN_MIN_PORT = String(options.portRange.min)
      env.PLUGIN_MAX_PORT = String(options.portRange.max)
    }
    if (hostPair !== undefined) env.PLUGIN_CLIENT_CERT = hostPair.certPem
    if (secrets !== undefined) env[peerSecretsEnv] = 'stdin'
    const startTimeoutMs = options.startTimeoutMs ?? defaultStartTimeoutMs
    proc = await spawnPluginProcess({
      command: options.command,
      args: options.args ?? [],
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      env,
      ...(secrets === undefined ? {} : { stdinLine: formatPeerSecretsLine(secrets) }),
      startTimeoutMs,
      logger,
      name,
      ...(user === undefined ? {} : { user }),
    })
    const line = parseHandshakeLine(proc.handshakeLine, [options.handshake.protocolVersion], name)
    let tls: MtlsMaterial | undefined
    if (hostPair !== undefined) {
      if (line.serverCertPem === undefined) {
        throw new PluginError('incompatible', 'AutoMTLS is on but the plugin sent no server certificate', {
          plugin: name,
        })
      }
      tls = { peerCertPem: line.serverCertPem, ...hostPair }
    }
    const started = proc
    const client = await connect({
      name,
      logger,
      ...(options.maxReceiveBytes === undefined ? {} : { maxReceiveBytes: options.maxReceiveBytes }),
      brokerDir: folders.brokerDir,
      ...(user === undefined ? {} : { brokerOwner: user }),
      reattach: {
        network: line.network,
        address: line.address,
        pid: proc.pid,
        protocolVersion: line.appVersion,
        ...(tls ? { tls } : {}),
        ...(secrets ? { secrets } : {}),
      },
      exited: proc.exited,
      timeoutMs: startTimeoutMs,
      kill: () => started.kill(),
      cleanup: folders.remove,
    })
    return client
  } catch (error) {
    proc?.kill()
    if (proc !== undefined) await proc.exited
    await folders.remove()
    throw PluginError.from(error, 'load_failed', name)
  }
}

/** A plugin of the host's user: one folder for its socket and the host's broker sockets. */
function sameUserFolders(given: string | undefined): PluginFolders {
  const socketDir = given ?? mkdtempSync(join(tmpdir(), 'corral-grpc-'))
  return {
    socketDir,
    brokerDir: socketDir,
    async remove() {
      if (given === undefined) rmSync(socketDir, { recursive: true, force: true })
    },
  }
}

/** A plugin of a user of its own: checks that it can reach what it needs, and makes its folders. */
function pluginUserFolders(user: PluginUser, options: StartGoPluginOptions, name: string, logger: Logger) {
  checkPluginUser(user)
  if (options.cwd !== undefined) assertPluginUserCan(user, 'enter', options.cwd, name)
  // A bare name is looked up on PATH, by the launcher, as the plugin user.
  if (options.command.includes('/')) {
    assertPluginUserCan(user, 'run', resolve(options.cwd ?? '.', options.command), name)
  }
  return createPluginUserFolders(user, name, logger, options.unixSocketDir)
}

/** Options of {@link reattachGoPlugin}. */
export interface ReattachGoPluginOptions extends ReattachConfig {
  name?: string
  logger?: Logger
  /** How long to wait for the connection. Default 10 s. */
  connectTimeoutMs?: number
  /**
   * Over TCP: the address of this host the plugin reaches it by. The broker listens there (on a
   * fresh port, with the connection's mutual TLS) for the services the host offers the plugin.
   * Default 127.0.0.1; any other address needs `tls`.
   */
  brokerHost?: string
  /** The largest message taken from the plugin; larger ones are refused before they are read whole. Default: no limit. */
  maxReceiveBytes?: number
}

/**
 * Connects to a go-plugin plugin that is already running: one started by another host process, or
 * one that runs as a service of its own (over TCP with mutual TLS).
 *
 * @example
 * const plugin = await reattachGoPlugin({ network: 'tcp', address: '10.0.0.7:7001', protocolVersion: 1, tls })
 */
export async function reattachGoPlugin(options: ReattachGoPluginOptions): Promise<GoPluginClient> {
  const name = options.name ?? options.address
  const socketDir = mkdtempSync(join(tmpdir(), 'corral-grpc-'))
  const { pid } = options
  let watch: NodeJS.Timeout | undefined
  const exited =
    pid === undefined
      ? new Promise<ProcessExit>(() => {})
      : new Promise<ProcessExit>((resolve) => {
          watch = setInterval(() => {
            if (!isAlive(pid)) {
              clearInterval(watch)
              resolve({ code: null, signal: null })
            }
          }, pidPollMs)
          watch.unref()
        })
  const cleanup = async () => {
    clearInterval(watch)
    rmSync(socketDir, { recursive: true, force: true })
  }
  try {
    if (pid !== undefined && !isAlive(pid)) {
      throw new PluginError('unavailable', `no process ${pid} to reattach to`, { plugin: name })
    }
    return await connect({
      name,
      logger: options.logger ?? stderrLogger,
      brokerDir: socketDir,
      reattach: {
        network: options.network,
        address: options.address,
        protocolVersion: options.protocolVersion,
        ...(pid === undefined ? {} : { pid }),
        ...(options.tls === undefined ? {} : { tls: options.tls }),
        ...(options.secrets === undefined ? {} : { secrets: options.secrets }),
      },
      ...(options.brokerHost === undefined ? {} : { brokerHost: options.brokerHost }),
      ...(options.maxReceiveBytes === undefined ? {} : { maxReceiveBytes: options.maxReceiveBytes }),
      exited,
      timeoutMs: options.connectTimeoutMs ?? defaultStartTimeoutMs,
      kill: () => {
        if (pid !== undefined) killQuietly(pid)
      },
      cleanup,
    })
  } catch (error) {
    await cleanup()
    throw PluginError.from(error, 'unavailable', name)
  }
}

interface ConnectOptions {
  name: string
  logger: Logger
  /** Where the broker's unix sockets go. */
  brokerDir: string
  /** Who the broker's unix sockets are handed to: a plugin that runs as a user of its own. */
  brokerOwner?: PluginUser
  reattach: ReattachConfig
  /** Where a TCP broker listens; default 127.0.0.1. */
  brokerHost?: string
  maxReceiveBytes?: number
  exited: Promise<ProcessExit>
  timeoutMs: number
  kill(): void
  cleanup(): Promise<void>
}

async function connect(options: ConnectOptions): Promise<GoPluginClient> {
  const { name, reattach } = options
  const target = reattach.network === 'unix' ? `unix:${reattach.address}` : reattach.address
  const security = channelSecurity(reattach.tls)
  const { secrets } = reattach
  const channelOptions = {
    ...security.options,
    'grpc.max_receive_message_length': options.maxReceiveBytes ?? -1,
  }
  // Every call into the plugin (its services, health, controller, stdio) carries the host's secret.
  const rpc = new Client(
    target,
    security.credentials,
    secrets === undefined
      ? channelOptions
      : { ...channelOptions, interceptors: [sendPeerSecret(secrets.host)] },
  )
  try {
    await new Promise<void>((resolve, reject) =>
      rpc.waitForReady(deadlineIn(options.timeoutMs), (error) => (error ? reject(error) : resolve())),
    )
  } catch (error) {
    rpc.close()
    throw new PluginError('load_failed', `cannot connect to ${target}: ${(error as Error).message}`, {
      plugin: name,
      cause: error,
    })
  }
  let broker: GrpcBroker
  try {
    broker = new GrpcBroker(rpc, {
      listen:
        reattach.network === 'tcp'
          ? { network: 'tcp', host: options.brokerHost ?? '127.0.0.1' }
          : {
              network: 'unix',
              socketDir: options.brokerDir,
              ...(options.brokerOwner === undefined ? {} : { owner: options.brokerOwner }),
            },
      ...(reattach.tls === undefined ? {} : { tls: reattach.tls }),
      ...(secrets === undefined ? {} : { secrets }),
      name,
    })
  } catch (error) {
    rpc.close()
    throw error
  }
  const stdio = forwardStdio(rpc, name, options.logger)
  let exitInfo: ProcessExit | undefined
  void options.exited.then((info) => {
    exitInfo = info
  })
  let stopping: Promise<void> | undefined
  let disconnected = false
  const closeConnection = async () => {
    if (disconnected) return
    disconnected = true
    stdio.cancel()
    broker.close()
    rpc.close()
    await options.cleanup()
  }
  const health = async (timeoutMs: number) => {
    try {
      const response = await unary(
        rpc,
        healthService.check,
        { service: 'plugin' },
        { deadline: deadlineIn(timeoutMs) },
      )
      return response.status === ServingStatus.SERVING
    } catch {
      return false
    }
  }
  const stop = (graceMs = defaultStopGraceMs): Promise<void> => {
    stopping ??= (async () => {
      // The plugin's server waits for open streams before it exits: end ours first.
      stdio.cancel()
      broker.close()
      if (exitInfo === undefined) {
        await unary(rpc, controllerService.shutdown, {}, { deadline: deadlineIn(graceMs) }).catch(() => {})
        const timer = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref())
        await Promise.race([options.exited, timer])
      }
      // Whatever is left of the plugin (itself, if it ignored Shutdown, or children it started) goes.
      options.kill()
      if (reattach.pid !== undefined) await options.exited
      await closeConnection()
    })()
    return stopping
  }
  const disconnect = async (): Promise<void> => {
    stopping ??= Promise.resolve().then(closeConnection)
    await stopping
  }
  return {
    name,
    pid: reattach.pid,
    protocolVersion: reattach.protocolVersion,
    rpc,
    channel: rpc.getChannel(),
    broker,
    reattachConfig: reattach,
    exited: options.exited,
    health,
    stop,
    disconnect,
  }
}

/** Forwards what the plugin writes to stdout and stderr when it offers `plugin.GRPCStdio`. */
function forwardStdio(rpc: Client, name: string, logger: Logger): { cancel(): void } {
  const stream = rpc.makeServerStreamRequest(
    stdioService.streamStdio.path,
    stdioService.streamStdio.requestSerialize,
    stdioService.streamStdio.responseDeserialize,
    {},
    new Metadata(),
    {},
  )
  const reader = (channel: string) =>
    new LineReader({
      ...logLineLimits,
      // Plain text on stderr is a complaint or a crash report more often than not.
      onLine: (line) =>
        logger.log(channel === 'stderr' ? 'warn' : 'info', line, { plugin: name, stream: channel }),
      onDropped: (count) => logger.log('warn', `dropped ${count} ${channel} lines`, { plugin: name }),
    })
  const stdout = reader('stdout')
  const stderr = reader('stderr')
  stream.on('data', (data: StdioData) => {
    const bytes = Buffer.from(data.data ?? [])
    if (data.channel === StdioChannel.STDOUT) stdout.push(bytes)
    else if (data.channel === StdioChannel.STDERR) stderr.push(bytes)
  })
  stream.on('error', (error: { code?: number }) => {
    // Plugins before go-plugin 1.4 do not offer it; their pipes are read instead.
    if (
      error.code !== status.UNIMPLEMENTED &&
      error.code !== status.CANCELLED &&
      error.code !== status.UNAVAILABLE
    ) {
      logger.log('debug', `stdio stream ended: ${String(error)}`, { plugin: name })
    }
  })
  return stream
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL')
  } catch {
    // Already gone.
  }
}
