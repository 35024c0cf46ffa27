import type { HttpMethod } from '@corral/types'
import { PluginError } from '@corral/types'
import type { FastifyInstance } from 'fastify'
import type { PluginManager } from './manager-api.js'

/**
 * Answers a request for a route of a blocked plugin with 403 `permission_denied` saying so, as for
 * one pending review: a blocked plugin does not run, so its routes are not in the route table, and
 * the plugin routes would answer 404 "no plugin route" — as if it had never been there.
 *
 * The check runs only for a request under `/plugins/` that no route matches, so it costs a served
 * route one table lookup.
 */
export function refuseBlockedPluginRoutes(app: FastifyInstance, manager: PluginManager): void {
  app.addHook('onRequest', async (request) => {
    if (!request.url.startsWith('/plugins/')) return
    const path = request.url.split('?', 1)[0] ?? request.url
    if (manager.registries.matchRoute(request.method as HttpMethod, path) !== undefined) return
    const name = path.slice('/plugins/'.length).split('/', 1)[0] ?? ''
    const plugin = manager.get(name)
    if (plugin?.state === 'blocked' || (plugin !== undefined && plugin.policy?.status === 'blocked'))
      throw new PluginError(
        'permission_denied',
        `plugin ${name} is blocked: an administrator blocked it, and its routes are not served`,
        { plugin: name },
      )
  })
}
