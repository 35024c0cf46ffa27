import { chmod, mkdir } from 'node:fs/promises'
import path from 'node:path'
import type { PluginUser } from '@corral/grpc-runner'
import { type Backends, createBackends, createSqlAuditLog } from '@corral/manager'
import { type LogLevel, PluginError, type ResourcePolicy } from '@corral/types'
import { loadHostSecret } from './auth/host-secret.js'
import { createUsersStore } from './auth/users-store.js'
import { checkFirstAdminPassword, ensureFirstAdmin, type FirstAdmin } from './first-admin.js'
import { readHostEnv } from './host-env.js'
import { createJsonLogger } from './json-logger.js'
import { createLogBuffer } from './log-buffer.js'
import type { PluginManager, PluginManagerOptions } from './manager-api.js'
import { hostMenu } from './pages/host-menu.js'
import { readHostTemplates } from './pages/render.js'
import { createHostServer, type HostServer, type HostServerOptions } from './server.js'

/** The routes that load, unload, reload or decide on plugins (the API's and the admin pages'). */
const changesPlugins = /^\/(?:api\/v1|admin)\/(?:plugins|policies)(?:\/|$)/

export interface HostOptions {
  /**
   * Where the embedded database lives (`<dataDir>/host.sqlite`); created if missing, and made (or
   * tightened to) mode 0700 at every start: it is the host's alone.
   */
  dataDir: string
  pluginsDir: string
  /** Seeds for plugins that have no stored policy yet (an administrator's later decisions win). */
  policies: ResourcePolicy[]
  hostVersion: string
  /** PostgreSQL instead of the SQLite file; with `redisUrl`, several replicas share one state. */
  databaseUrl?: string
  redisUrl?: string
  port: number
  /** The address to listen on. Default 127.0.0.1. */
  listenHost?: string
  /** The first administrator's password; a random one is made (and returned once) without it. */
  adminPassword?: string
  templatesDir: string
  /** The plugin manager's factory: `createPluginManager` from `@corral/manager`. */
  createManager: (options: PluginManagerOptions) => PluginManager
  /** The host's and its plugins' log level. Default `CORRAL_LOG_LEVEL`, else `info`. */
  logLevel?: LogLevel
  /**
   * The OS user gRPC plugin processes run as (`CORRAL_PLUGIN_USER`); unset, the host's own. A host
   * running as root without one warns at start.
   */
  pluginUser?: PluginUser
  /** Passed to the server as they are (timeouts, caps, cookies). */
  server?: Partial<
    Omit<HostServerOptions, 'manager' | 'users' | 'database' | 'audit' | 'logs' | 'secret' | 'templatesDir'>
  >
}

export interface RunningHost {
  url: string
  manager: PluginManager
  server: HostServer
  backends: Backends
  /** Set at first start only. */
  firstAdmin?: FirstAdmin
  /** Graceful: stop taking requests, let those under way finish, stop the plugins, close the databases. */
  close(): Promise<void>
}

/**
 * Starts a Corral host: the backends (embedded by default), users, the plugin manager over the
 * plugins folder, and the web server. The server listens before the plugins load (`/healthz`
 * answers; `/readyz` is 503 until the first load of the plugins folder is done), and the promise
 * resolves once they have loaded. The first administrator is created last, so a start that fails
 * (a port in use, a missing plugins folder) leaves none behind whose generated password no one saw.
 * `CORRAL_LOG_LEVEL` and `CORRAL_TRUST_PROXY` are read here (see `readHostEnv`); options win.
 *
 * @example
 * const host = await startHost({ dataDir, pluginsDir, policies, hostVersion, port: 8080, templatesDir, createManager: createPluginManager })
 * console.log(host.url)
 */
export async function startHost(options: HostOptions): Promise<RunningHost> {
  const env = readHostEnv()
  await mkdir(options.dataDir, { recursive: true, mode: 0o700 })
  // One made by an earlier version, or by hand, may be open to others: a plugin user among them.
  await chmod(options.dataDir, 0o700)
  const backends = await createBackends({
    sqlitePath: path.join(options.dataDir, 'host.sqlite'),
    ...(options.databaseUrl === undefined ? {} : { databaseUrl: options.databaseUrl }),
    ...(options.redisUrl === undefined ? {} : { redisUrl: options.redisUrl }),
  })
  const logLevel = options.logLevel ?? env.logLevel ?? 'info'
  const logs = createLogBuffer(createJsonLogger(logLevel))
  if (options.pluginUser === undefined && process.getuid?.() === 0) {
    logs.logger.log(
      'warn',
      'the host runs as root and CORRAL_PLUGIN_USER is not set: gRPC plugin processes run as root, able to read and write the host database and everything else; set CORRAL_PLUGIN_USER to an unprivileged user (such as nobody)',
    )
  }
  let manager: PluginManager | undefined
  let server: HostServer | undefined
  try {
    const users = createUsersStore(backends.database)
    await users.migrate()
    // Checked now, not after the plugins have loaded: a password that cannot be set stops the start at once.
    if (options.adminPassword !== undefined && (await users.count()) === 0)
      checkFirstAdminPassword(options.adminPassword)
    manager = options.createManager({
      pluginsDir: options.pluginsDir,
      hostVersion: options.hostVersion,
      backends,
      policies: options.policies,
      logger: logs.logger,
      ...(options.pluginUser === undefined ? {} : { pluginUser: options.pluginUser }),
      hostMenu,
      hostTemplates: readHostTemplates(options.templatesDir),
      groups: { ensure: (group) => users.ensureGroup(group.name, group.description ?? '') },
    })
    const running = manager
    const web = await createHostServer({
      ...(env.logLevel === undefined ? {} : { logger: { level: env.logLevel } }),
      ...(env.trustProxy === undefined ? {} : { trustProxy: env.trustProxy }),
      ...options.server,
      manager,
      users,
      database: backends.database,
      audit: createSqlAuditLog(backends.database),
      logs,
      secret: await loadHostSecret(backends.database),
      templatesDir: options.templatesDir,
    })
    server = web
    // Until the plugins folder has loaded once, the host is alive but not ready: a plugin whose
    // process hangs before its handshake delays readiness, not the probes or the admin pages. What
    // would load, unload or decide on a plugin waits for that first load, which would meet it
    // half-way (a plugin loaded by a request, then again by the start).
    let loading = true
    web.app.addHook('onRequest', async (request, reply) => {
      if (!loading) return
      const route = request.routeOptions.url ?? ''
      if (route === '/readyz')
        return reply.code(503).send({ status: 'not ready', checks: { pluginsLoaded: false } })
      if (request.method !== 'GET' && request.method !== 'HEAD' && changesPlugins.test(route))
        throw new PluginError('unavailable', 'the host is still loading its plugins: try again in a moment', {
          retryAfterMs: 1000,
        })
    })
    const address = await web.app.listen({ port: options.port, host: options.listenHost ?? '127.0.0.1' })
    await manager.start()
    loading = false
    const firstAdmin = await ensureFirstAdmin(users, options.adminPassword)
    return {
      url: address,
      manager: running,
      server: web,
      backends,
      ...(firstAdmin === undefined ? {} : { firstAdmin }),
      async close() {
        await web.close()
        await running.close()
        await backends.close()
      },
    }
  } catch (error) {
    await server?.close().catch(() => {})
    await manager?.close().catch(() => {})
    await backends.close()
    throw error
  }
}
