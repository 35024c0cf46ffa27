import type { AuditLog } from '@corral/manager'
import { PluginError } from '@corral/types'
import type { FastifyInstance } from 'fastify'
import { requireAdmin } from '../auth/guards.js'
import type { UsersStore } from '../auth/users-store.js'
import type { PluginManager } from '../manager-api.js'
import { decide, pluginOrNotFound, pluginWithPolicy, withStoredPolicies } from './policy-decisions.js'
import { registerUsersApi } from './users-api.js'

const pluginName = { type: 'string', pattern: '^[a-z][a-z0-9-]{1,62}$' } as const
const nameParams = { type: 'object', required: ['name'], properties: { name: pluginName } } as const
const jobParams = {
  type: 'object',
  required: ['plugin', 'job'],
  properties: { plugin: pluginName, job: { type: 'string', minLength: 1, maxLength: 128 } },
} as const
const statuses = ['pending_review', 'approved', 'restricted', 'blocked'] as const
const errorResponse = {
  type: 'object',
  properties: {
    code: { type: 'string' },
    message: { type: 'string' },
    fields: {
      type: 'array',
      items: { type: 'object', properties: { field: { type: 'string' }, message: { type: 'string' } } },
    },
  },
} as const
const errors = { 400: errorResponse, 403: errorResponse, 404: errorResponse }

export interface AdminApiOptions {
  manager: PluginManager
  users: UsersStore
  audit: AuditLog
}

/**
 * The JSON admin API under `/api/v1`: everything the admin pages do. Administrators only; a
 * session's state-changing calls carry its CSRF token in `x-csrf-token`. Bad input is a 4xx with
 * `{code, message, fields}`.
 */
export async function registerAdminApi(app: FastifyInstance, options: AdminApiOptions): Promise<void> {
  const { manager, users, audit } = options
  await app.register(
    async (api) => {
      api.addHook('preHandler', requireAdmin)
      const by = (user: { username: string } | null) => user?.username ?? 'unknown'

      api.get(
        '/plugins',
        {
          schema: {
            tags: ['plugins'],
            summary: 'Every loaded plugin: state, history, health, metrics, requested and granted',
          },
        },
        async () => withStoredPolicies(manager, manager.list()),
      )
      api.get<{ Params: { name: string } }>(
        '/plugins/:name',
        { schema: { tags: ['plugins'], params: nameParams, response: errors } },
        async (request) => pluginWithPolicy(manager, request.params.name),
      )
      api.post<{ Body: { path: string } }>(
        '/plugins',
        {
          schema: {
            tags: ['plugins'],
            summary: 'Loads a plugin folder (or .wasm) that is not loaded yet',
            body: {
              type: 'object',
              required: ['path'],
              additionalProperties: false,
              properties: { path: { type: 'string', minLength: 1 } },
            },
            response: errors,
          },
        },
        async (request, reply) => reply.code(201).send(await manager.load(request.body.path)),
      )
      for (const action of ['reload', 'unload', 'reset'] as const) {
        api.post<{ Params: { name: string } }>(
          `/plugins/:name/${action}`,
          {
            schema: {
              tags: ['plugins'],
              summary: `${action[0]?.toUpperCase()}${action.slice(1)}s a plugin`,
              params: nameParams,
              response: errors,
            },
          },
          async (request) => {
            const { name } = request.params
            pluginOrNotFound(manager, name)
            if (action === 'reload') return manager.reload(name)
            await manager[action](name)
            return manager.get(name) ?? { name, state: 'stopped' }
          },
        )
      }
      api.post<{ Params: { name: string }; Body: { status: (typeof statuses)[number]; grants?: unknown[] } }>(
        '/plugins/:name/decision',
        {
          schema: {
            tags: ['policies'],
            summary: 'Approves (with what it requests unless grants are given), restricts or blocks a plugin',
            params: nameParams,
            body: {
              type: 'object',
              required: ['status'],
              additionalProperties: false,
              properties: {
                status: { type: 'string', enum: statuses },
                grants: { type: 'array', items: { type: 'object' } },
              },
            },
            response: errors,
          },
        },
        async (request) => decide(manager, request.params.name, request.body, by(request.user)),
      )

      api.get('/policies', { schema: { tags: ['policies'] } }, async () => manager.policies.list())
      api.get<{ Params: { name: string } }>(
        '/policies/:name',
        {
          schema: {
            tags: ['policies'],
            summary: 'The stored policy, or for a loaded plugin without one the default it runs under',
            params: nameParams,
            response: errors,
          },
        },
        async (request) => {
          const { name } = request.params
          // The store makes up a default for any name: only a loaded plugin runs under one.
          const stored = (await manager.policies.list()).find((policy) => policy.plugin === name)
          if (stored !== undefined) return stored
          if (manager.get(name) === undefined)
            throw new PluginError(
              'not_found',
              `no policy is stored for ${name}, and no plugin ${name} is loaded`,
            )
          return manager.policies.get(name)
        },
      )
      api.put<{ Params: { name: string }; Body: Record<string, unknown> }>(
        '/policies/:name',
        {
          schema: {
            tags: ['policies'],
            summary: 'Stores a policy and applies it live (the grant is checked field by field)',
            params: nameParams,
            body: {
              type: 'object',
              required: ['status'],
              properties: { status: { type: 'string', enum: statuses }, grants: { type: 'array' } },
            },
            response: errors,
          },
        },
        async (request) => {
          const { name } = request.params
          if (request.body.plugin !== undefined && request.body.plugin !== name)
            throw new PluginError(
              'invalid_argument',
              `the policy names plugin ${String(request.body.plugin)}, the path ${name}`,
              {
                fields: [{ field: 'plugin', message: `must be ${name}` }],
              },
            )
          pluginOrNotFound(manager, name)
          return manager.setPolicy({ ...request.body, plugin: name }, { by: by(request.user) })
        },
      )

      api.get('/jobs', { schema: { tags: ['jobs'] } }, async () => manager.jobs.list())
      api.post<{ Params: { plugin: string; job: string } }>(
        '/jobs/:plugin/:job/run',
        { schema: { tags: ['jobs'], summary: 'Runs a job now', params: jobParams, response: errors } },
        async (request) => {
          const { plugin, job } = request.params
          findJob(manager, plugin, job)
          return manager.jobs.runNow(plugin, job)
        },
      )
      api.put<{ Params: { plugin: string; job: string }; Body: { enabled: boolean } }>(
        '/jobs/:plugin/:job',
        {
          schema: {
            tags: ['jobs'],
            summary: 'Enables or disables a job',
            params: jobParams,
            body: {
              type: 'object',
              required: ['enabled'],
              additionalProperties: false,
              properties: { enabled: { type: 'boolean' } },
            },
            response: errors,
          },
        },
        async (request) => {
          const { plugin, job } = request.params
          findJob(manager, plugin, job)
          await manager.jobs.setEnabled(plugin, job, request.body.enabled)
          return findJob(manager, plugin, job)
        },
      )

      api.get<{ Querystring: { plugin?: string; method?: string; code?: string; limit?: number } }>(
        '/audit',
        {
          schema: {
            tags: ['audit'],
            summary: 'Refused host calls, newest first',
            querystring: {
              type: 'object',
              additionalProperties: false,
              properties: {
                plugin: { type: 'string' },
                method: { type: 'string' },
                code: { type: 'string' },
                limit: { type: 'integer', minimum: 1, maximum: 1000 },
              },
            },
            response: errors,
          },
        },
        async (request) => audit.list(request.query),
      )

      registerUsersApi(api, { users, manager, errors: { ...errors, 409: errorResponse } })
    },
    { prefix: '/api/v1' },
  )
}

function findJob(manager: PluginManager, plugin: string, job: string) {
  const found = manager.jobs.list().find((j) => j.plugin === plugin && j.id === job)
  if (found === undefined) throw new PluginError('not_found', `no job ${job} of plugin ${plugin}`)
  return found
}
