import type { AuditLog } from '@corral/manager'
import type { Permission, PolicyStatus } from '@corral/types'
import { PluginError } from '@corral/types'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { parse } from 'yaml'
import { decide, pluginOrNotFound, pluginWithPolicy, withStoredPolicies } from '../api/policy-decisions.js'
import { requireAdmin } from '../auth/guards.js'
import type { LogBuffer } from '../log-buffer.js'
import type { PluginManager } from '../manager-api.js'
import type { PageContext } from './page-context.js'
import type { RenderPage } from './render.js'

export interface AdminPagesOptions {
  manager: PluginManager
  render: RenderPage
  page: PageContext
  audit: AuditLog
  logs: LogBuffer
}

const decisions = new Set<PolicyStatus>(['approved', 'restricted', 'blocked'])
const json = (value: unknown) => JSON.stringify(value ?? null, null, 2)
/** Epoch milliseconds as the pages show them: ISO 8601, UTC. */
const time = (at: number | undefined) => (at === undefined ? '' : new Date(at).toISOString())
/** Permissions one a line, as an administrator reads them: `db read+write: stats_*`. */
const permissionLines = (permissions: readonly Permission[] = []) =>
  permissions
    .map((p) => `${p.type}${p.access.length > 0 ? ` ${p.access.join('+')}` : ''}: ${p.scope.join(', ')}`)
    .join('\n') || '(none)'

/**
 * The admin pages: plugins (state, history, health, metrics, requested vs granted; decisions and
 * lifecycle), jobs, audit. Their forms post here with the page's CSRF token and come back to the page.
 */
export function registerAdminPages(app: FastifyInstance, options: AdminPagesOptions): void {
  const { manager, render, page, audit, logs } = options
  const html = 'text/html; charset=utf-8'
  const back = (reply: FastifyReply, to: string) => reply.redirect(to, 303)

  app.register(async (admin) => {
    admin.addHook('preHandler', requireAdmin)

    admin.get('/admin/plugins', async (request, reply) => {
      reply.type(html)
      const plugins = (await withStoredPolicies(manager, manager.list())).map((p) => ({
        ...p,
        status: p.policy?.status ?? 'pending_review',
        requestedText: permissionLines(p.requested?.permissions),
        grantedText: permissionLines(p.grant?.permissions),
      }))
      return render('plugins', { ...(await page(request, reply, 'plugins')), plugins })
    })
    admin.get<{ Params: { name: string } }>('/admin/plugins/:name', async (request, reply) => {
      const p = await pluginWithPolicy(manager, request.params.name)
      reply.type(html)
      return render('plugin', {
        ...(await page(request, reply, 'plugins')),
        plugin: p,
        status: p.policy?.status ?? 'pending_review',
        requestedText: permissionLines(p.requested?.permissions),
        grantedText: permissionLines(p.grant?.permissions),
        policyGrantsText: json(p.policy?.grants ?? []),
        healthText: json(p.health),
        metricsText: json(p.metrics),
        history: [...p.history].reverse().map((h) => ({ ...h, time: time(h.at) })),
        logs: logs.entries({ plugin: p.name }).slice(-100).reverse(),
      })
    })
    admin.post<{ Params: { name: string }; Body: { status?: string; grants?: string } }>(
      '/admin/plugins/:name/decision',
      async (request, reply) => {
        const status = request.body?.status as PolicyStatus
        if (!decisions.has(status))
          throw new PluginError('invalid_argument', 'status is approved, restricted or blocked')
        const grants = request.body?.grants?.trim() ? parseGrants(request.body.grants) : undefined
        await decide(
          manager,
          request.params.name,
          { status, ...(grants === undefined ? {} : { grants }) },
          request.user?.username ?? '',
        )
        return back(reply, '/admin/plugins')
      },
    )
    for (const action of ['reload', 'unload', 'reset'] as const) {
      admin.post<{ Params: { name: string } }>(`/admin/plugins/:name/${action}`, async (request, reply) => {
        const { name } = request.params
        pluginOrNotFound(manager, name)
        await (action === 'reload' ? manager.reload(name) : manager[action](name))
        return back(reply, '/admin/plugins')
      })
    }
    admin.post<{ Body: { path?: string } }>('/admin/plugins', async (request, reply) => {
      const path = request.body?.path?.trim()
      if (!path)
        throw new PluginError('invalid_argument', 'name a plugin folder', {
          fields: [{ field: 'path', message: 'is required' }],
        })
      await manager.load(path)
      return back(reply, '/admin/plugins')
    })

    admin.get('/admin/jobs', async (request, reply) => {
      reply.type(html)
      const jobs = manager.jobs.list().map((j) => ({
        ...j,
        nextRunTime: time(j.nextRunAt),
        lastRunTime: time(j.lastRun?.at),
      }))
      return render('jobs', { ...(await page(request, reply, 'jobs')), jobs })
    })
    admin.post<{ Params: { plugin: string; job: string } }>(
      '/admin/jobs/:plugin/:job/run',
      async (request, reply) => {
        // An unknown job or one running already is the error page; a run that fails is its last
        // run, which the jobs page shows.
        await manager.jobs.runNow(request.params.plugin, request.params.job)
        return back(reply, '/admin/jobs')
      },
    )
    admin.post<{ Params: { plugin: string; job: string }; Body: { enabled?: string } }>(
      '/admin/jobs/:plugin/:job/enabled',
      async (request, reply) => {
        const enabled = request.body?.enabled
        if (enabled !== 'true' && enabled !== 'false')
          throw new PluginError('invalid_argument', 'enabled is true or false', {
            fields: [{ field: 'enabled', message: 'must be true or false' }],
          })
        await manager.jobs.setEnabled(request.params.plugin, request.params.job, enabled === 'true')
        return back(reply, '/admin/jobs')
      },
    )

    admin.get<{ Querystring: { plugin?: string; method?: string; code?: string } }>(
      '/admin/audit',
      async (request, reply) => {
        const filter = Object.fromEntries(
          Object.entries(request.query ?? {}).filter(([, v]) => typeof v === 'string' && v !== ''),
        )
        reply.type(html)
        const entries = (await audit.list({ ...filter, limit: 200 })).map((e) => ({ ...e, time: time(e.at) }))
        return render('audit', { ...(await page(request, reply, 'audit')), filter, entries })
      },
    )
  })
}

/** Grants as an administrator types them in the form: a YAML (or JSON) list of permissions. */
function parseGrants(text: string): unknown[] {
  let value: unknown
  try {
    value = parse(text)
  } catch (error) {
    throw new PluginError('invalid_argument', `the grants are not YAML: ${(error as Error).message}`, {
      fields: [{ field: 'grants', message: 'must be a YAML or JSON list' }],
    })
  }
  if (!Array.isArray(value))
    throw new PluginError('invalid_argument', 'the grants must be a list', {
      fields: [{ field: 'grants', message: 'must be a list' }],
    })
  return value
}
