import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { User, UsersStore } from './users-store.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The signed-in user, when the request carries a live session cookie. */
    user: User | null
    sessionId: string | null
  }
}

export const sessionCookie = 'corral_session'

/** Paths that never need to know the user (probes, metrics, static files). */
const anonymousPrefixes = ['/static/', '/healthz', '/readyz', '/metrics']

export interface SessionOptions {
  users: UsersStore
  /** Mark the cookie `Secure` (behind https). */
  secure: boolean
  ttlMs: number
}

/** Reads the session cookie of every request into `request.user`. */
export function installSessions(app: FastifyInstance, options: SessionOptions): void {
  app.decorateRequest('user', null)
  app.decorateRequest('sessionId', null)
  app.addHook('onRequest', async (request) => {
    if (anonymousPrefixes.some((prefix) => request.url.startsWith(prefix))) return
    const id = request.cookies[sessionCookie]
    if (id === undefined || id === '') return
    const session = await options.users.session(id)
    if (session === undefined) return
    request.user = session.user
    request.sessionId = session.id
  })
}

/** Sets the session cookie: random id, httpOnly, SameSite=Lax, Secure behind https. */
export function setSessionCookie(reply: FastifyReply, id: string, options: SessionOptions): void {
  reply.setCookie(sessionCookie, id, {
    path: '/',
    httpOnly: true,
    sameSite: 'lax',
    secure: options.secure,
    maxAge: Math.floor(options.ttlMs / 1000),
  })
}

export function clearSessionCookie(reply: FastifyReply): void {
  reply.clearCookie(sessionCookie, { path: '/' })
}

/** Whether a request asks for a page (a browser) rather than JSON (a script). */
export function wantsHtml(request: FastifyRequest): boolean {
  return !request.url.startsWith('/api/') && (request.headers.accept ?? '').includes('text/html')
}
