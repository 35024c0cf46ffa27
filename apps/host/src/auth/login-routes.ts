import type { FastifyInstance } from 'fastify'
import type { PageContext } from '../pages/page-context.js'
import type { RenderPage } from '../pages/render.js'
import { csrfToken } from './csrf.js'
import { clearSessionCookie, type SessionOptions, setSessionCookie } from './sessions.js'
import type { UsersStore } from './users-store.js'

export interface LoginRoutesOptions extends SessionOptions {
  users: UsersStore
  render: RenderPage
  page: PageContext
  /** Attempts per minute and address, on the form and the JSON login together. */
  loginsPerMinute: number
}

/** Where a login may lead: a path on this host only (`//evil.example` is another host). */
function safeNext(next: unknown): string {
  return typeof next === 'string' && next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/\\')
    ? next
    : '/'
}

/** Login and logout: the form (`/login`) and the JSON session (`/api/v1/session`), rate-limited. */
export function registerLoginRoutes(app: FastifyInstance, options: LoginRoutesOptions): void {
  const { users, render, page } = options
  const rateLimit = { max: options.loginsPerMinute, timeWindow: 60_000 }

  app.get<{ Querystring: { next?: string } }>('/login', async (request, reply) => {
    reply.type('text/html; charset=utf-8')
    return render('login', {
      ...(await page(request, reply, 'signIn')),
      next: safeNext(request.query.next),
      failed: false,
    })
  })
  app.post<{ Body: { username?: string; password?: string; next?: string } }>(
    '/login',
    { config: { rateLimit } },
    async (request, reply) => {
      const user = await users.authenticate(
        String(request.body?.username ?? ''),
        String(request.body?.password ?? ''),
      )
      if (user === undefined) {
        reply.code(401).type('text/html; charset=utf-8')
        return render('login', {
          ...(await page(request, reply, 'signIn')),
          next: safeNext(request.body?.next),
          failed: true,
        })
      }
      const session = await users.openSession(user.username, options.ttlMs)
      setSessionCookie(reply, session.id, options)
      return reply.redirect(safeNext(request.body?.next), 303)
    },
  )
  app.post('/logout', async (request, reply) => {
    if (request.sessionId !== null) await users.closeSession(request.sessionId)
    clearSessionCookie(reply)
    return reply.redirect('/login', 303)
  })

  app.post<{ Body: { username: string; password: string } }>(
    '/api/v1/session',
    {
      config: { rateLimit },
      schema: {
        tags: ['session'],
        summary: 'Signs in: sets the session cookie, returns the user and a CSRF token for later calls',
        body: {
          type: 'object',
          required: ['username', 'password'],
          additionalProperties: false,
          properties: { username: { type: 'string' }, password: { type: 'string' } },
        },
      },
    },
    async (request, reply) => {
      const user = await users.authenticate(request.body.username, request.body.password)
      if (user === undefined)
        return reply.code(401).send({ code: 'permission_denied', message: 'wrong user name or password' })
      const session = await users.openSession(user.username, options.ttlMs)
      setSessionCookie(reply, session.id, options)
      // The token is bound to the session it is used in, which starts with this response.
      request.sessionId = session.id
      return { user, csrfToken: csrfToken(reply) }
    },
  )
  app.get(
    '/api/v1/session',
    { schema: { tags: ['session'], summary: 'The signed-in user and a fresh CSRF token' } },
    async (request, reply) => {
      if (request.user === null)
        return reply.code(401).send({ code: 'permission_denied', message: 'sign in first' })
      return { user: request.user, csrfToken: csrfToken(reply) }
    },
  )
}
