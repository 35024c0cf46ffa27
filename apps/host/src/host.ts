import { chmod, mkdir } from 'node:fs/promises'
import path from 'node:path'
import type { PluginUser } from '@corral/grpc-runner'
import { type Backends, createBackends, createSqlAuditLog } from '@corral/manager'
import type { LogLevel, ResourcePolicy } from '@corral/types'
import { loadHostSecret } from './auth/host-secret.js'
import { createUsersStore } from './auth/users-store.js'
import { ensureFirstAdmin, type FirstAdmin } from './first-admin.js'
import { createJsonLogger } from './json-logger.js'
import { createLogBuffer } from './log-buffer.js'
import type { PluginManager, PluginManagerOptions } from './manager-api.js'
import { hostMenu } from './pages/host-menu.js'
import { readHostTemplates } from './pages/render.js'
import { createHostServer, type HostServer, type HostServerOptions } from './server.js'

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
 * plugins folder, and the web server.
 *
 * @example
 * const host = await startHost({ dataDir, pluginsDir, policies, hostVersion, port: 8080, templatesDir, createManager: createPluginManager })
 * console.log(host.url)
 */
export async function startHost(options: HostOptions): Promise<RunningHost> {
  await mkdir(options.dataDir, { recursive: true, mode: 0o700 })
  // One made by an earlier version, or by hand, may be open to others: a plugin user among them.
  await chmod(options.dataDir, 0o700)
  const backends = await createBackends({
    sqlitePath: path.join(options.dataDir, 'host.sqlite'),
    ...(options.databaseUrl === undefined ? {} : { databaseUrl: options.databaseUrl }),
    ...(options.redisUrl === undefined ? {} : { redisUrl: options.redisUrl }),
  })
  const logs = createLogBuffer(createJsonLogger(options.logLevel ?? 'info'))
  if (options.pluginUser === undefined && process.getuid?.() === 0) {
    logs.logger.log(
      'warn',
      'the host runs as root and CORRAL_PLUGIN_USER is not set: gRPC plugin processes run as root, able to read and write the host database and everything else; set CORRAL_PLUGIN_USER to an unprivileged user (such as nobody)',
    )
  }
  let manager: PluginManager | undefined
  try {
    const users = createUsersStore(backends.database)
    await users.migrate()
    const firstAdmin = await ensureFirstAdmin(users, options.adminPassword)
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
    await manager.start()
    const server = await createHostServer({
      ...options.server,
      manager,
      users,
      database: backends.database,
      audit: createSqlAuditLog(backends.database),
      logs,
      secret: await loadHostSecret(backends.database),
      templatesDir: options.templatesDir,
    })
    const address = await server.app.listen({ port: options.port, host: options.listenHost ?? '127.0.0.1' })
    const running = manager
    return {
      url: address,
      manager: running,
      server,
      backends,
      ...(firstAdmin === undefined ? {} : { firstAdmin }),
      async close() {
        await server.close()
        await running.close()
        await backends.close()
      },
    }
  } catch (error) {
    await manager?.close().catch(() => {})
    await backends.close()
    throw error
  }
}
