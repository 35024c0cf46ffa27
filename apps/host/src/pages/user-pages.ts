import type { FastifyInstance } from 'fastify'
import { requireUser } from '../auth/guards.js'
import type { PluginManager } from '../manager-api.js'
import type { SseHub } from '../sse.js'
import type { WidgetFeed } from '../widgets.js'
import type { PageContext } from './page-context.js'
import type { RenderPage } from './render.js'

export interface UserPagesOptions {
  manager: PluginManager
  render: RenderPage
  page: PageContext
  widgets: WidgetFeed
  hub: SseHub
}

/** The pages every signed-in user has: the landing page, the dashboard, events, and their live stream. */
export function registerUserPages(app: FastifyInstance, options: UserPagesOptions): void {
  const { manager, render, page, widgets, hub } = options
  const html = 'text/html; charset=utf-8'

  app.get('/', { preHandler: requireUser }, async (_request, reply) => {
    // The registry gives the landing page's host path, under the plugin's mount point already.
    return reply.redirect(manager.registries.landingPage()?.path ?? '/dashboard', 303)
  })
  app.get('/dashboard', { preHandler: requireUser }, async (request, reply) => {
    reply.type(html)
    return render('dashboard', {
      ...(await page(request, reply, 'dashboard')),
      widgets: await widgets.renderAll(),
    })
  })
  app.get('/events', { preHandler: requireUser }, async (request, reply) => {
    reply.type(html)
    return render('events', await page(request, reply, 'events'))
  })
  app.get('/events/stream', { preHandler: requireUser }, async (request, reply) => {
    hub.connect(request, reply)
  })
}
