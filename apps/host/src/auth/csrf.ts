import csrf from '@fastify/csrf-protection'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'

const unsafeMethods = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

/**
 * CSRF protection: every state-changing request made with a session (and every login form) must
 * carry a token this host issued for that session, in the form field `_csrf` or the header
 * `x-csrf-token`. Requests without a session have no ambient authority to abuse; JSON logins cannot
 * be sent cross-site without CORS, which the host does not allow.
 */
export async function installCsrf(app: FastifyInstance, secure: boolean, hmacKey: string): Promise<void> {
  await app.register(csrf, {
    sessionPlugin: '@fastify/cookie',
    csrfOpts: { hmacKey },
    cookieOpts: { path: '/', httpOnly: true, sameSite: 'strict', secure },
    // Binds a token to the session it was issued in: a token from before login (or another session) fails.
    getUserInfo: userInfo,
  })
  app.addHook('preHandler', (request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void) => {
    const formLogin = request.url.split('?', 1)[0] === '/login'
    if (!unsafeMethods.has(request.method) || (request.sessionId === null && !formLogin)) return done()
    app.csrfProtection(request, reply, done)
  })
}

/** A fresh token for the forms and scripts of this response. */
export function csrfToken(reply: FastifyReply): string {
  return reply.generateCsrf({ userInfo: userInfo(reply.request) })
}

const userInfo = (request: FastifyRequest) => request.sessionId ?? 'anonymous'
