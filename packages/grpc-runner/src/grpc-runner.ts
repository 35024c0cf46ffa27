import { type CertificatePair, generateCertificate } from '@corral/proto'
import type { LoadOptions, Logger, Plugin, RestartOptions, Runner, SupervisorClock } from '@corral/types'
import { defaultRestartOptions, PluginError, stderrLogger } from '@corral/types'
import { LoadedGrpcPlugin } from './loaded-grpc-plugin.js'
import type { ReattachTarget } from './plugin-launch.js'
import { checkPluginUser, type PluginUser } from './plugin-user.js'
import type { SupervisionOptions } from './process-watch.js'

/**
 * A plugin the gRPC runner loaded: the {@link Plugin} contract, and what only a plugin in a process
 * of its own has.
 *
 * Lifecycle verbs, one per level: `shutdown()` is the plugin contract's graceful stop (its
 * `PluginService/Shutdown` within `shutdown_timeout`, then its process is stopped or its service
 * disconnected); the runner's `close()` shuts down every plugin it loaded. Below, on a
 * {@link GoPluginClient}: `stop` a process the runner owns (go-plugin's Shutdown, a grace period,
 * then kill), `disconnect` from a service it does not own (the service keeps running), `kill` by
 * force (SIGKILL to the process group, no grace); `close` releases a resource that is not a process
 * (a stream, a broker server, a connection).
 */
export interface GrpcPlugin extends Plugin {
  readonly runtime: 'grpc'
  /** The plugin process's id while one runs; a reattached service's only if its config gives one. */
  readonly pid: number | undefined
  /** Whether this plugin is a service of its own the runner reattached to (not a process it owns). */
  readonly reattached: boolean
}

/** The runner of `runtime: grpc` plugins, as {@link createGrpcRunner} makes it. */
export interface GrpcRunner extends Runner {
  readonly runtime: 'grpc'
  load(options: LoadOptions): Promise<GrpcPlugin>
  /** Shuts down every plugin it loaded; `load` refuses from then on. */
  close(): Promise<void>
}

/** Options of {@link createGrpcRunner}. */
export interface GrpcRunnerOptions {
  /** Sent to plugins in `Register`. Default `0.0.0`. */
  hostVersion?: string
  /**
   * Receives plugins' logs (hclog stderr lines, forwarded stdio) and the runner's notes. Default
   * `stderrLogger` of `@corral/types`.
   */
  logger?: Logger
  /**
   * Speak TLS with every plugin (go-plugin's AutoMTLS): each plugin process makes its own
   * certificate, the runner one for the host; the host's broker accepts only that plugin's
   * certificate, the plugin only the host's. On by default. Off,
   * each plugin process gets a secret pair on its stdin instead, checked on every call both ways
   * (Corral SDK plugins). Either way another plugin cannot call as this one; a policy's
   * `unauthenticated_transport` turns both off for one plugin that can do neither.
   */
  autoMtls?: boolean
  /** Health and memory checks of running plugins. */
  supervision?: Partial<SupervisionOptions>
  /** When a crashed plugin is started again, and when it is quarantined instead. */
  restart?: Partial<RestartOptions>
  /** The clock of crash restarts (backoff timers, the restart window); tests pass a fake one. */
  clock?: SupervisorClock
  /**
   * Plugins that run as services of their own (started by their own deployment, possibly on another
   * machine), by plugin name: `load` connects to the address given (go-plugin reattach) instead of
   * starting the manifest's entry, and serves HostService back over the broker (over TCP: on
   * `brokerHost`, with the connection's mutual TLS). The runner does not own such a plugin:
   * `shutdown` disconnects and leaves it running; a lost connection is reattached with backoff.
   */
  reattach?: Readonly<Record<string, ReattachTarget>>
  /**
   * Run every plugin process as this OS user and group (no supplementary groups) instead of the
   * host's: it then cannot read the host's files (its database) or its processes' environments and
   * descriptors (`/proc/<host pid>/environ`). Takes a host running as root. The plugin's folder
   * and entry (and Node, for a `node` entry) must be reachable by that user, else its load fails
   * with `load_failed` naming the path and the user. Unset: the host's user.
   */
  pluginUser?: PluginUser
}

const defaultSupervision: SupervisionOptions = {
  healthIntervalMs: 10_000,
  healthTimeoutMs: 2_000,
  healthFailures: 2,
  memoryIntervalMs: 5_000,
  memoryChecks: 3,
}

/**
 * The runner for `runtime: grpc` plugins: each plugin a process started from its manifest entry
 * (`binary`, or `node` run with the host's own Node), spoken to as a hashicorp/go-plugin gRPC plugin.
 *
 * @example
 * const runner = createGrpcRunner({ hostVersion: '0.1.0' })
 * const plugin = await runner.load({ manifest, dir, grant, hostApi })
 * await plugin.register()
 * await plugin.init({})
 * await plugin.call('greet', { name: 'Ada' })
 * await runner.close()
 *
 * // A plugin that runs as its own service, over TCP with mutual TLS:
 * const remote = createGrpcRunner({
 *   reattach: { reports: { network: 'tcp', address: '10.0.0.7:7001', protocolVersion: 1, tls, brokerHost: '10.0.0.2' } },
 * })
 */
export function createGrpcRunner(options: GrpcRunnerOptions = {}): GrpcRunner {
  if (options.pluginUser !== undefined) checkPluginUser(options.pluginUser)
  const settings = {
    hostVersion: options.hostVersion ?? '0.0.0',
    logger: options.logger ?? stderrLogger,
    autoMtls: options.autoMtls ?? true,
    hostCertificate: hostCertificateOnce(),
    supervision: { ...defaultSupervision, ...options.supervision },
    restart: { ...defaultRestartOptions, ...options.restart },
    clock: options.clock,
    reattach: options.reattach ?? {},
    ...(options.pluginUser === undefined ? {} : { pluginUser: options.pluginUser }),
  }
  const loaded = new Set<LoadedGrpcPlugin>()
  let closed = false
  return {
    runtime: 'grpc',
    async load(load: LoadOptions): Promise<GrpcPlugin> {
      if (closed)
        throw new PluginError('unavailable', 'the gRPC runner is closed', { plugin: load.manifest.name })
      if (load.manifest.runtime !== 'grpc') {
        throw new PluginError('load_failed', `runtime ${load.manifest.runtime} is not grpc`, {
          plugin: load.manifest.name,
        })
      }
      const plugin: LoadedGrpcPlugin = new LoadedGrpcPlugin(load, settings, () => loaded.delete(plugin))
      await plugin.start()
      loaded.add(plugin)
      return plugin
    },
    async close(): Promise<void> {
      closed = true
      await Promise.all([...loaded].map((plugin) => plugin.shutdown()))
    },
  }
}

/**
 * The host's AutoMTLS certificate, made at the first start that needs one and presented to every
 * plugin the runner starts: a key pair per start cost each start its generation. Sharing it gives
 * no plugin more than before: a plugin gets only the certificate (the key never leaves this
 * process), and each connection still trusts only its own plugin's certificate.
 */
function hostCertificateOnce(): () => Promise<CertificatePair> {
  let pair: Promise<CertificatePair> | undefined
  return () => {
    pair ??= generateCertificate().catch((error: unknown) => {
      pair = undefined // the next start tries again
      throw error
    })
    return pair
  }
}
