import type { HttpMethod, RouteRequest } from '@corral/types'
import { PluginError } from '@corral/types'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { User } from './auth/users-store.js'
import { clientGone } from './client-gone.js'
import type { PluginManager } from './manager-api.js'
import type { HostMetrics } from './metrics.js'
import { pluginHtmlPolicy, toPluginResponse } from './plugin-response.js'
import { servedStatuses } from './served-plugins.js'

/** Request headers a plugin never sees: the user's credentials are the host's. */
const privateHeaders = new Set(['cookie', 'authorization', 'x-csrf-token', 'proxy-authorization'])

export interface PluginRoutesOptions {
  manager: PluginManager
  metrics: HostMetrics
  /** The most a route call may take, below each plugin's own `call_timeout`. */
  callTimeoutMs: number
}

/**
 * Mounts every running plugin's routes under `/plugins/`: one catch-all that asks the manager's
 * route table, which the manager swaps whole as plugins come, go and reload, so a request sees one
 * version of the table and routes change without touching the server's own router.
 */
export function mountPluginRoutes(app: FastifyInstance, options: PluginRoutesOptions): void {
  app.register(async (scope) => {
    // A plugin gets the body as the client sent it, whatever its type, as text.
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body))
    routeToPlugins(scope, options)
  })
}

function routeToPlugins(app: FastifyInstance, options: PluginRoutesOptions): void {
  const { manager, metrics } = options
  app.route({
    method: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
    url: '/plugins/*',
    handler: async (request, reply) => {
      const method = request.method as HttpMethod
      const path = request.url.split('?', 1)[0] ?? request.url
      const match = manager.registries.matchRoute(method, path)
      if (match === undefined) {
        refuseIfBlocked(manager, path)
        throw new PluginError('not_found', `no plugin route ${method} ${path}`)
      }
      const { route, params } = match
      // The policy store's short cache, not the whole PluginInfo: this runs on every request.
      const { status } = await manager.policies.get(route.plugin)
      if (!servedStatuses.has(status))
        throw new PluginError(
          'permission_denied',
          `plugin ${route.plugin} is ${status}: an administrator has to approve it`,
        )
      checkMiddleware(route.middleware, request.user ?? null)

      const user = request.user
      const call: RouteRequest = {
        method,
        path: path.slice(`/plugins/${route.plugin}`.length) || '/',
        params,
        query: firstValues(request.query as Record<string, string | string[]>),
        headers: visibleHeaders(request),
        body: typeof request.body === 'string' ? request.body : '',
        user:
          user === null
            ? null
            : { id: user.username, name: user.username, groups: user.groups, admin: user.admin },
      }
      const stop = metrics.timeRoute(route.plugin)
      let result: unknown
      try {
        result = await manager.call(route.plugin, route.handler, call, {
          timeoutMs: options.callTimeoutMs,
          // A client that goes away cancels the plugin's work.
          signal: clientGone(reply.raw),
        })
      } finally {
        stop()
      }
      const response = toPluginResponse(route.plugin, result)
      // Whatever the type says, a browser may render a response as HTML (a type's case does not
      // matter to it): every answer gets the plugin's sandbox.
      reply
        .code(response.status)
        .headers(response.headers)
        .header('content-security-policy', pluginHtmlPolicy)
        .header('x-content-type-options', 'nosniff')
      if (typeof response.body === 'string') {
        if (response.headers['content-type'] === undefined) reply.type('text/html; charset=utf-8')
        return response.body
      }
      reply.type('application/json; charset=utf-8')
      return JSON.stringify(response.body)
    },
  })
}

/**
 * A blocked plugin does not run, so its routes are not in the route table: a request for one is
 * refused as for a plugin pending review, not answered "no plugin route" as if it never was there.
 */
function refuseIfBlocked(manager: PluginManager, path: string): void {
  const name = path.slice('/plugins/'.length).split('/', 1)[0] ?? ''
  const plugin = manager.get(name)
  if (plugin !== undefined && (plugin.state === 'blocked' || plugin.policy?.status === 'blocked'))
    throw new PluginError(
      'permission_denied',
      `plugin ${name} is blocked: an administrator blocked it, and its routes are not served`,
      { plugin: name },
    )
}

/** Runs a route's checks in order: `auth` (signed in), `admin`, `group:<name>` (admins pass). */
export function checkMiddleware(middleware: readonly string[], user: User | null): void {
  for (const check of middleware) {
    if (user === null) throw new PluginError('permission_denied', 'sign in first')
    if (check === 'auth') continue
    if (check === 'admin') {
      if (!user.admin) throw new PluginError('permission_denied', 'administrators only')
      continue
    }
    if (check.startsWith('group:')) {
      const group = check.slice('group:'.length)
      if (!user.admin && !user.groups.includes(group))
        throw new PluginError('permission_denied', `members of group ${group} only`)
      continue
    }
    // A check the host does not know refuses: a typo must not open a route.
    throw new PluginError('permission_denied', `unknown route check ${check}`)
  }
}

function firstValues(query: Record<string, string | string[]>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(query))
    out[name] = Array.isArray(value) ? (value[0] ?? '') : value
  return out
}

function visibleHeaders(request: FastifyRequest): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(request.headers)) {
    if (privateHeaders.has(name) || value === undefined) continue
    out[name] = Array.isArray(value) ? value.join(', ') : value
  }
  return out
}
