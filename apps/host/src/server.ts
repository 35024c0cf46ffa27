import { createRequire } from 'node:module'
import path from 'node:path'
import type { AuditLog, SqlDatabase } from '@corral/manager'
import type { LogLevel } from '@corral/types'
import cookie from '@fastify/cookie'
import formbody from '@fastify/formbody'
import rateLimit from '@fastify/rate-limit'
import fastifyStatic from '@fastify/static'
import swagger from '@fastify/swagger'
import Fastify, { type FastifyInstance } from 'fastify'
import { registerAdminApi } from './api/admin-api.js'
import { installCsrf } from './auth/csrf.js'
import { registerLoginRoutes } from './auth/login-routes.js'
import { installSessions, wantsHtml } from './auth/sessions.js'
import type { UsersStore } from './auth/users-store.js'
import { asPluginError, errorBody, isLoadFailure, requestErrorStatus } from './http-errors.js'
import { fastifyLoggerOptions } from './json-logger.js'
import type { LogBuffer } from './log-buffer.js'
import type { ManagerEvent, PluginManager } from './manager-api.js'
import { createHostMetrics } from './metrics.js'
import { registerAdminPages } from './pages/admin-pages.js'
import { createPageContext } from './pages/page-context.js'
import { createPageRenderer, readHostTemplates } from './pages/render.js'
import { registerUserPages } from './pages/user-pages.js'
import { registerUsersPages } from './pages/users-pages.js'
import { mountPluginRoutes } from './plugin-routes.js'
import { isServed } from './served-plugins.js'
import { createSseHub } from './sse.js'
import { createWidgetFeed } from './widgets.js'

export interface HostServerOptions {
  manager: PluginManager
  users: UsersStore
  /** The host database, for `/readyz`. */
  database: SqlDatabase
  audit: AuditLog
  logs: LogBuffer
  /** The host's secret key (see `loadHostSecret`): CSRF tokens are signed with it. */
  secret: string
  /** Folder of the host's `.liquid` templates. */
  templatesDir: string
  /** Mark cookies `Secure`: set when the host is reached over https. */
  secureCookies?: boolean
  /** Largest request body, in bytes. Default 1 MiB. */
  bodyLimit?: number
  /** Longest a plugin route or widget call may take (each plugin's `call_timeout` caps it too). Default 10 s. */
  callTimeoutMs?: number
  /** Longest a whole request may take to arrive. Default 30 s. */
  requestTimeoutMs?: number
  sessionTtlMs?: number
  /** Login attempts per minute and address. Default 10. */
  loginsPerMinute?: number
  /** Proxies whose `X-Forwarded-For` gives the client's address (fastify's `trustProxy`). Default none. */
  trustProxy?: boolean | string[] | ((address: string, hop: number) => boolean)
  /**
   * Request logs, as JSON lines of the manager's shape: on stdout from `level` (default `info`), or
   * `false` for none. Default on.
   */
  logger?: false | { level: LogLevel; stream?: { write(line: string): void } }
}

export interface HostServer {
  readonly app: FastifyInstance
  /** Stops taking requests and ends live streams; requests under way finish. */
  close(): Promise<void>
}

const require = createRequire(import.meta.url)
const packageDir = (name: string) => path.dirname(require.resolve(`${name}/package.json`))

/**
 * The host's pages run scripts from the host's origin only (htmx, its SSE extension), never inline
 * ones: markup a plugin slipped past the sanitizers could not run. Inline styles stay (the layout's
 * own); images come from the host or are inline, so a page cannot send what it shows elsewhere.
 */
const hostPagePolicy =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
  "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

/**
 * The Corral host web server: plugin routes, pages, the admin API, live events, probes and metrics,
 * all over one plugin manager.
 *
 * @example
 * const server = await createHostServer({ manager, users, database, audit, logs, templatesDir })
 * await server.app.listen({ port: 8080 })
 */
export async function createHostServer(options: HostServerOptions): Promise<HostServer> {
  const { manager, users } = options
  const secure = options.secureCookies ?? false
  const callTimeoutMs = options.callTimeoutMs ?? 10_000
  const sessionOptions = { users, secure, ttlMs: options.sessionTtlMs ?? 12 * 3600_000 }
  const app = Fastify({
    logger:
      options.logger === false
        ? false
        : fastifyLoggerOptions(options.logger?.level ?? 'info', options.logger?.stream),
    bodyLimit: options.bodyLimit ?? 1024 * 1024,
    requestTimeout: options.requestTimeoutMs ?? 30_000,
    // Keep-alive connections with nothing under way close at shutdown; busy ones finish first.
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    trustProxy: options.trustProxy ?? false,
  })
  let draining = false
  const hub = createSseHub()
  const metrics = createHostMetrics(manager, manager.hostApi)
  const render = createPageRenderer(readHostTemplates(options.templatesDir), manager.registries, (plugin) =>
    isServed(manager, plugin),
  )
  const page = createPageContext(manager.registries)
  const widgets = createWidgetFeed(manager, hub, callTimeoutMs)

  await app.register(swagger, {
    openapi: {
      info: { title: 'Corral host admin API', version: '1' },
      components: {
        securitySchemes: {
          session: { type: 'apiKey', in: 'cookie', name: 'corral_session' },
          csrf: { type: 'apiKey', in: 'header', name: 'x-csrf-token' },
        },
      },
      security: [{ session: [], csrf: [] }],
    },
    hideUntagged: true,
  })
  await app.register(cookie)
  await app.register(formbody)
  await app.register(rateLimit, { global: false })
  await app.register(fastifyStatic, {
    root: path.join(packageDir('htmx.org'), 'dist'),
    prefix: '/static/htmx/',
  })
  await app.register(fastifyStatic, {
    root: path.join(packageDir('htmx-ext-sse'), 'dist'),
    prefix: '/static/htmx-ext-sse/',
    decorateReply: false,
  })
  installSessions(app, sessionOptions)
  await installCsrf(app, secure, options.secret)

  app.setErrorHandler(async (error, request, reply) => {
    const failure = asPluginError(error)
    const status = requestErrorStatus(error, failure, manager.registries)
    if (status >= 500) request.log.error({ err: error }, 'request failed')
    else if (isLoadFailure(failure))
      request.log.warn(
        { code: failure.code, ...(failure.plugin === undefined ? {} : { plugin: failure.plugin }) },
        `plugin load failed: ${failure.rawMessage}`,
      )
    if (failure.retryAfterMs !== undefined)
      reply.header('retry-after', Math.ceil(failure.retryAfterMs / 1000))
    reply.code(status)
    // A bug's details go to the log, not to the client.
    const body =
      failure.code === 'internal'
        ? { code: 'internal', message: 'internal error (see the host log)' }
        : errorBody(failure)
    if (wantsHtml(request)) {
      reply.type('text/html; charset=utf-8')
      return render('error', {
        ...(await page(request, reply, 'dashboard')),
        status,
        error: body,
      })
    }
    return body
  })
  app.setNotFoundHandler(async (request) => {
    throw asPluginError({ statusCode: 404, message: `no route ${request.method} ${request.url}` })
  })

  // While draining, every answer closes its connection, so that keep-alive connections do not hold the close up.
  // A callback hook, not an async one: it runs on every answer, and a promise each is not free.
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (draining) reply.header('connection', 'close')
    // Plugin routes set their own sandbox.
    if (!reply.hasHeader('content-security-policy'))
      reply.header('content-security-policy', hostPagePolicy).header('x-content-type-options', 'nosniff')
    done(null, payload)
  })

  app.get('/healthz', async () => ({ status: 'ok' }))
  app.get('/readyz', async (_request, reply) => {
    const checks = {
      accepting: !draining,
      database: await options.database.query('SELECT 1 AS ok', []).then(
        () => true,
        () => false,
      ),
    }
    const ready = checks.accepting && checks.database
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', checks })
  })
  app.get('/metrics', async (_request, reply) =>
    reply.type(metrics.registry.contentType).send(await metrics.render()),
  )
  app.get('/api/v1/openapi.json', async () => app.swagger())

  registerLoginRoutes(app, {
    ...sessionOptions,
    render,
    page,
    loginsPerMinute: options.loginsPerMinute ?? 10,
  })
  await registerAdminApi(app, { manager, users, audit: options.audit })
  registerUserPages(app, { manager, render, page, widgets, hub })
  registerAdminPages(app, { manager, render, page, audit: options.audit, logs: options.logs })
  registerUsersPages(app, { manager, users, render, page })
  mountPluginRoutes(app, { manager, metrics, callTimeoutMs })

  // A template (a plugin may override it) that fails costs that one update, never the process.
  const liveRenderFailed = (error: unknown) => app.log.error({ err: error }, 'a live update failed to render')
  // Live: manager events to the events page and the plugins page, log lines to the admins' log view.
  const stopEvents = manager.events.subscribe((event: ManagerEvent) => {
    if (hub.clients === 0) return
    render('event-item', { event, time: new Date(event.at).toISOString() }).then(
      (item) => hub.broadcast('event', item),
      liveRenderFailed,
    )
    if (event.type === 'plugin.state') hub.broadcast(`state:${event.plugin}`, event.to, 'admins')
  })
  const stopLogs = options.logs.onEntry((entry) => {
    if (hub.clients === 0) return
    void render('log-item', {
      entry,
      time: new Date(entry.at).toISOString(),
      fields: JSON.stringify(entry.fields),
    }).then((item) => {
      // The plugin's page shows its own lines only.
      if (typeof entry.fields.plugin === 'string') hub.broadcast(`log:${entry.fields.plugin}`, item, 'admins')
    }, liveRenderFailed)
  })
  widgets.start(async (list) => render('widgets', { widgets: list }), liveRenderFailed)

  return {
    app,
    async close() {
      draining = true
      stopEvents()
      stopLogs()
      widgets.stop()
      hub.close()
      await app.close()
    },
  }
}
