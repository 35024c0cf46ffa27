import type { FastifyInstance, FastifyReply } from 'fastify'
import { deleteHostGroup, listGroups } from '../api/groups-admin.js'
import { requireAdmin } from '../auth/guards.js'
import type { UsersStore } from '../auth/users-store.js'
import type { PluginManager } from '../manager-api.js'
import type { PageContext } from './page-context.js'
import type { RenderPage } from './render.js'

export interface UsersPagesOptions {
  manager: PluginManager
  users: UsersStore
  render: RenderPage
  page: PageContext
}

type Form = Record<string, string | undefined> | undefined

/**
 * The administrators' users page: users (groups, admin, disabled, password) and groups (with the
 * plugin that declares each). Its forms post here with the page's CSRF token and come back to it;
 * what the store refuses is shown on the error page.
 */
export function registerUsersPages(app: FastifyInstance, options: UsersPagesOptions): void {
  const { manager, users, render, page } = options
  const back = (reply: FastifyReply) => reply.redirect('/admin/users', 303)

  app.register(async (admin) => {
    admin.addHook('preHandler', requireAdmin)

    admin.get('/admin/users', async (request, reply) => {
      const groups = await listGroups(users, manager)
      const list = (await users.list()).map((user) => ({
        ...user,
        otherGroups: groups.map((g) => g.name).filter((name) => !user.groups.includes(name)),
      }))
      reply.type('text/html; charset=utf-8')
      return render('users', { ...(await page(request, reply, 'users')), users: list, groups })
    })
    admin.post<{ Body: Form }>('/admin/users', async (request, reply) => {
      await users.create({
        username: request.body?.username?.trim() ?? '',
        password: request.body?.password ?? '',
        admin: request.body?.admin === 'true',
      })
      return back(reply)
    })
    admin.post<{ Params: { username: string }; Body: Form }>(
      '/admin/users/:username/groups',
      async (request, reply) => {
        await users.addToGroup(request.params.username, request.body?.group ?? '')
        return back(reply)
      },
    )
    admin.post<{ Params: { username: string; group: string } }>(
      '/admin/users/:username/groups/:group/remove',
      async (request, reply) => {
        await users.removeFromGroup(request.params.username, request.params.group)
        return back(reply)
      },
    )
    for (const flag of ['admin', 'disabled'] as const) {
      admin.post<{ Params: { username: string }; Body: Form }>(
        `/admin/users/:username/${flag}`,
        async (request, reply) => {
          await users.update(request.params.username, { [flag]: request.body?.[flag] === 'true' })
          return back(reply)
        },
      )
    }
    admin.post<{ Params: { username: string }; Body: Form }>(
      '/admin/users/:username/password',
      async (request, reply) => {
        await users.update(request.params.username, { password: request.body?.password ?? '' })
        return back(reply)
      },
    )
    admin.post<{ Body: Form }>('/admin/groups', async (request, reply) => {
      await users.createGroup(request.body?.name?.trim() ?? '', request.body?.description?.trim() ?? '')
      return back(reply)
    })
    admin.post<{ Params: { name: string } }>('/admin/groups/:name/delete', async (request, reply) => {
      await deleteHostGroup(users, manager, request.params.name)
      return back(reply)
    })
  })
}
