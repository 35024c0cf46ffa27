import { PluginError } from '@corral/types'
import type { FastifyInstance } from 'fastify'
import type { UserChange, UsersStore } from '../auth/users-store.js'
import type { PluginManager } from '../manager-api.js'
import { deleteHostGroup, listGroups } from './groups-admin.js'

const username = { type: 'string', pattern: '^[a-z0-9][a-z0-9._-]{0,63}$' } as const
const groupName = { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]{0,62}$' } as const
const userParams = { type: 'object', required: ['username'], properties: { username } } as const
const membershipParams = {
  type: 'object',
  required: ['username', 'group'],
  properties: { username, group: groupName },
} as const
const groupParams = { type: 'object', required: ['name'], properties: { name: groupName } } as const
const user = {
  type: 'object',
  properties: {
    username: { type: 'string' },
    admin: { type: 'boolean' },
    disabled: { type: 'boolean' },
    groups: { type: 'array', items: { type: 'string' } },
  },
} as const
const group = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    description: { type: 'string' },
    members: { type: 'array', items: { type: 'string' } },
    plugin: { type: 'string', description: 'the loaded plugin that declares it' },
  },
} as const

export interface UsersApiOptions {
  users: UsersStore
  manager: PluginManager
  /** The 4xx answers' schema, by status. */
  errors: Record<number, unknown>
}

/**
 * The users and groups of the admin API (registered inside its `/api/v1` scope, behind its
 * administrators-only check). A change of a user's groups, admin flag or disabled flag holds from
 * the user's next request.
 */
export function registerUsersApi(api: FastifyInstance, options: UsersApiOptions): void {
  const { users, manager, errors } = options

  api.get(
    '/users',
    { schema: { tags: ['users'], summary: 'Every user', response: { 200: { type: 'array', items: user } } } },
    async () => users.list(),
  )
  api.get<{ Params: { username: string } }>(
    '/users/:username',
    { schema: { tags: ['users'], params: userParams, response: { 200: user, ...errors } } },
    async (request) => {
      const found = await users.get(request.params.username)
      if (found === undefined) throw new PluginError('not_found', `no user ${request.params.username}`)
      return found
    },
  )
  api.post<{ Body: { username: string; password: string; admin?: boolean; groups?: string[] } }>(
    '/users',
    {
      schema: {
        tags: ['users'],
        summary: 'Creates a user (the groups named are created if missing)',
        body: {
          type: 'object',
          required: ['username', 'password'],
          additionalProperties: false,
          properties: {
            username: { type: 'string' },
            password: { type: 'string' },
            admin: { type: 'boolean' },
            groups: { type: 'array', items: { type: 'string', minLength: 1 } },
          },
        },
        response: { 201: user, ...errors },
      },
    },
    async (request, reply) => reply.code(201).send(await users.create(request.body)),
  )
  api.patch<{ Params: { username: string }; Body: UserChange }>(
    '/users/:username',
    {
      schema: {
        tags: ['users'],
        summary:
          'Makes a user an administrator or not, disables or enables them, or sets a new password (which ends their sessions); the last enabled administrator stays one',
        params: userParams,
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            admin: { type: 'boolean' },
            disabled: { type: 'boolean' },
            password: { type: 'string' },
          },
        },
        response: { 200: user, ...errors },
      },
    },
    async (request) => {
      const { admin, disabled, password } = request.body
      // Unknown properties are dropped by the schema: a body of only those would change nothing.
      if (admin === undefined && disabled === undefined && password === undefined)
        throw new PluginError('invalid_argument', 'name what changes: admin, disabled or password', {
          fields: [{ field: '(body)', message: 'must have admin, disabled or password' }],
        })
      return users.update(request.params.username, request.body)
    },
  )
  api.put<{ Params: { username: string; group: string } }>(
    '/users/:username/groups/:group',
    {
      schema: {
        tags: ['users'],
        summary: 'Adds a user to a group',
        params: membershipParams,
        response: { 200: user, ...errors },
      },
    },
    async (request) => users.addToGroup(request.params.username, request.params.group),
  )
  api.delete<{ Params: { username: string; group: string } }>(
    '/users/:username/groups/:group',
    {
      schema: {
        tags: ['users'],
        summary: 'Removes a user from a group',
        params: membershipParams,
        response: { 200: user, ...errors },
      },
    },
    async (request) => users.removeFromGroup(request.params.username, request.params.group),
  )

  api.get(
    '/groups',
    {
      schema: {
        tags: ['groups'],
        summary: 'Every group, with its members and the plugin that declares it',
        response: { 200: { type: 'array', items: group } },
      },
    },
    async () => listGroups(users, manager),
  )
  api.post<{ Body: { name: string; description?: string } }>(
    '/groups',
    {
      schema: {
        tags: ['groups'],
        summary: 'Creates a host group',
        body: {
          type: 'object',
          required: ['name'],
          additionalProperties: false,
          properties: { name: { type: 'string' }, description: { type: 'string', maxLength: 500 } },
        },
        response: { 201: group, ...errors },
      },
    },
    async (request, reply) =>
      reply.code(201).send(await users.createGroup(request.body.name, request.body.description)),
  )
  api.delete<{ Params: { name: string } }>(
    '/groups/:name',
    {
      schema: {
        tags: ['groups'],
        summary: 'Deletes a host group and its memberships (not a loaded plugin’s)',
        params: groupParams,
        response: { 204: { type: 'null' }, ...errors },
      },
    },
    async (request, reply) => {
      await deleteHostGroup(users, manager, request.params.name)
      return reply.code(204).send()
    },
  )
}
