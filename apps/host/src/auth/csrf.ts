import csrf from '@fastify/csrf-protection'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'

const unsafeMethods = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])
/** The cookie that holds a browser's CSRF secret, which the tokens are derived from. */
const secretCookie = '_csrf'
/** Verified tokens kept at most: past it the memory starts again (the cost is only a few HMACs). */
const maxVerified = 10_000

/**
 * CSRF protection: every state-changing request made with a session (and every login form) must
 * carry a token this host issued for that session, in the form field `_csrf` or the header
 * `x-csrf-token`. Requests without a session have no ambient authority to abuse; JSON logins cannot
 * be sent cross-site without CORS, which the host does not allow.
 */
export async function installCsrf(app: FastifyInstance, secure: boolean, hmacKey: string): Promise<void> {
  await app.register(csrf, {
    sessionPlugin: '@fastify/cookie',
    cookieKey: secretCookie,
    getToken: tokenOf,
    csrfOpts: { hmacKey },
    cookieOpts: { path: '/', httpOnly: true, sameSite: 'strict', secure },
    // Binds a token to the session it was issued in: a token from before login (or another session) fails.
    getUserInfo: userInfo,
  })
  /**
   * Token checks that passed, by who, secret and token: a check costs two HMACs, and a page or a
   * script sends the same token with every call of its session. The check is a pure function of the
   * three, so a remembered pass is the same answer. A failed check is never remembered.
   */
  const verified = new Set<string>()
  app.addHook('preHandler', (request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void) => {
    const formLogin = request.url.split('?', 1)[0] === '/login'
    if (!unsafeMethods.has(request.method) || (request.sessionId === null && !formLogin)) return done()
    const key = JSON.stringify([userInfo(request), request.cookies[secretCookie], tokenOf(request)])
    if (verified.has(key)) return done()
    // On a failure the plugin answers 403 itself and does not call back.
    app.csrfProtection(request, reply, () => {
      if (verified.size >= maxVerified) verified.clear()
      verified.add(key)
      done()
    })
  })
}

/** A fresh token for the forms and scripts of this response. */
export function csrfToken(reply: FastifyReply): string {
  return reply.generateCsrf({ userInfo: userInfo(reply.request) })
}

const userInfo = (request: FastifyRequest) => request.sessionId ?? 'anonymous'

/** Where a request carries its token: where @fastify/csrf-protection looks by default. */
function tokenOf(request: FastifyRequest): string | undefined {
  const { body, headers } = request as { body?: { _csrf?: string }; headers: Record<string, unknown> }
  return (body?._csrf ||
    headers['csrf-token'] ||
    headers['xsrf-token'] ||
    headers['x-csrf-token'] ||
    headers['x-xsrf-token']) as string | undefined
}
