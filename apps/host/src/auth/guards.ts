import { PluginError } from '@corral/types'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { wantsHtml } from './sessions.js'

/** preHandler: signed-in users only; a browser is sent to the login page. */
export async function requireUser(request: FastifyRequest, reply: FastifyReply): Promise<void> {
  if (request.user !== null) return
  if (wantsHtml(request)) {
    await reply.redirect(`/login?next=${encodeURIComponent(request.url)}`, 303)
    return
  }
  throw new PluginError('permission_denied', 'sign in first')
}

/** preHandler: administrators only. */
export async function requireAdmin(request: FastifyRequest, reply: FastifyReply): Promise<void> {
  await requireUser(request, reply)
  if (reply.sent) return
  if (request.user?.admin !== true) throw new PluginError('permission_denied', 'administrators only')
}
