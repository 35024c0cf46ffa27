import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { UsersStore } from '../auth/users-store.js'
import type { HostServer } from '../server.js'
import { type FakeHost, startFakeHost } from '../testing/fake-host.js'

// The users and groups admin API over the in-memory manager: `team` is the `notes` plugin's group,
// and its route `/team` is for that group's members.
let host: FakeHost
let users: UsersStore
let server: HostServer

beforeEach(async () => {
  host = await startFakeHost()
  ;({ users, server } = host)
})
afterEach(async () => {
  await host.close()
})

const signIn = (username: string, password: string) => host.signIn(username, password)

/** An administrator's API client: every call with the session cookie and CSRF token. */
async function adminApi() {
  const { cookie, csrf } = await signIn('admin', 'admin-password')
  return (method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, payload?: unknown) =>
    server.app.inject({
      method,
      url: `/api/v1${url}`,
      headers: { cookie, 'x-csrf-token': csrf },
      ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
    })
}

describe('users API', () => {
  it('adds a user to a group, which opens the group’s route on the user’s next request', async () => {
    const api = await adminApi()
    const bob = await signIn('bob', 'bob-password')
    const team = () => server.app.inject({ url: '/plugins/notes/team', headers: { cookie: bob.cookie } })
    expect((await team()).statusCode).toBe(403)

    const added = await api('PUT', '/users/bob/groups/team')
    expect(added.statusCode).toBe(200)
    expect(added.json()).toEqual({ username: 'bob', admin: false, disabled: false, groups: ['team'] })
    expect((await team()).statusCode).toBe(200)

    const removed = await api('DELETE', '/users/bob/groups/team')
    expect(removed.json()).toMatchObject({ groups: [] })
    expect((await team()).statusCode).toBe(403)
  })

  it('answers an unknown user or group with 404 and a bad name with 400', async () => {
    const api = await adminApi()
    expect((await api('PUT', '/users/nobody/groups/team')).json()).toMatchObject({ code: 'not_found' })
    const noGroup = await api('PUT', '/users/bob/groups/ghosts')
    expect(noGroup.statusCode).toBe(404)
    expect(noGroup.json()).toMatchObject({ code: 'not_found', message: expect.stringContaining('ghosts') })
    const badGroup = await api('PUT', '/users/bob/groups/Not:A:Group')
    expect(badGroup.statusCode).toBe(400)
    expect(badGroup.json()).toMatchObject({
      code: 'invalid_argument',
      fields: [expect.objectContaining({ field: 'group' })],
    })
    expect((await api('GET', '/users/nobody')).statusCode).toBe(404)
    expect((await api('GET', '/users/bob')).json()).toMatchObject({ username: 'bob', groups: [] })
  })

  it('makes a user an administrator and back, never the last one', async () => {
    const api = await adminApi()
    const last = await api('PATCH', '/users/admin', { admin: false })
    expect(last.statusCode).toBe(400)
    expect(last.json()).toMatchObject({
      code: 'invalid_argument',
      message: expect.stringContaining('last administrator'),
      fields: [{ field: 'admin', message: expect.any(String) }],
    })
    const disabling = await api('PATCH', '/users/admin', { disabled: true })
    expect(disabling.statusCode).toBe(400)
    expect(disabling.json()).toMatchObject({ fields: [expect.objectContaining({ field: 'disabled' })] })

    expect((await api('PATCH', '/users/bob', { admin: true })).json()).toMatchObject({ admin: true })
    const bob = await signIn('bob', 'bob-password')
    expect(
      (await server.app.inject({ url: '/api/v1/plugins', headers: { cookie: bob.cookie } })).statusCode,
    ).toBe(200)
    expect((await api('PATCH', '/users/bob', { admin: false })).json()).toMatchObject({ admin: false })
    // At once, on bob's next request.
    expect(
      (await server.app.inject({ url: '/api/v1/plugins', headers: { cookie: bob.cookie } })).statusCode,
    ).toBe(403)
  })

  it('disables a user, whose session ends and who cannot sign in, and enables them again', async () => {
    const api = await adminApi()
    const bob = await signIn('bob', 'bob-password')
    expect((await api('PATCH', '/users/bob', { disabled: true })).json()).toMatchObject({ disabled: true })
    const session = await server.app.inject({ url: '/api/v1/session', headers: { cookie: bob.cookie } })
    expect(session.statusCode).toBe(401)
    const refused = await server.app.inject({
      method: 'POST',
      url: '/api/v1/session',
      payload: { username: 'bob', password: 'bob-password' },
    })
    expect(refused.statusCode).toBe(401)
    await api('PATCH', '/users/bob', { disabled: false })
    await signIn('bob', 'bob-password')
  })

  it('resets a password', async () => {
    const api = await adminApi()
    const short = await api('PATCH', '/users/bob', { password: 'short' })
    expect(short.statusCode).toBe(400)
    expect(short.json()).toMatchObject({ fields: [expect.objectContaining({ field: 'password' })] })
    expect((await api('PATCH', '/users/bob', { password: 'a-new-password' })).statusCode).toBe(200)
    await signIn('bob', 'a-new-password')
  })

  it('refuses a change that says nothing or says something unknown', async () => {
    const api = await adminApi()
    for (const body of [{}, { admin: 'yes' }, { groups: ['team'] }]) {
      const res = await api('PATCH', '/users/bob', body)
      expect(res.statusCode, JSON.stringify(body)).toBe(400)
      expect(res.json()).toMatchObject({ code: 'invalid_argument' })
    }
  })

  it('is for administrators only, and each change needs the CSRF token', async () => {
    const bob = await signIn('bob', 'bob-password')
    const own = await server.app.inject({
      method: 'PATCH',
      url: '/api/v1/users/bob',
      headers: { cookie: bob.cookie, 'x-csrf-token': bob.csrf },
      payload: { admin: true },
    })
    expect(own.statusCode).toBe(403)
    expect(
      (await server.app.inject({ url: '/api/v1/groups', headers: { cookie: bob.cookie } })).statusCode,
    ).toBe(403)
    const admin = await signIn('admin', 'admin-password')
    const noToken = await server.app.inject({
      method: 'PUT',
      url: '/api/v1/users/bob/groups/team',
      headers: { cookie: admin.cookie },
    })
    expect(noToken.statusCode).toBe(403)
    expect((await users.get('bob'))?.groups).toEqual([])
    expect((await users.get('bob'))?.admin).toBe(false)
  })
})

describe('groups API', () => {
  it('lists the groups with their members and the plugin that declares each', async () => {
    const api = await adminApi()
    await api('PUT', '/users/bob/groups/team')
    expect((await api('POST', '/groups', { name: 'ops', description: 'On call.' })).statusCode).toBe(201)
    expect((await api('GET', '/groups')).json()).toEqual([
      { name: 'ops', description: 'On call.', members: [] },
      { name: 'team', description: 'The team.', members: ['bob'], plugin: 'notes' },
    ])
  })

  it('creates and deletes a host group, with its memberships', async () => {
    const api = await adminApi()
    expect((await api('POST', '/groups', { name: 'ops' })).json()).toEqual({
      name: 'ops',
      description: '',
      members: [],
    })
    const twice = await api('POST', '/groups', { name: 'ops' })
    expect(twice.statusCode).toBe(409)
    expect(twice.json()).toMatchObject({ code: 'already_exists' })
    await api('PUT', '/users/bob/groups/ops')
    const deleted = await api('DELETE', '/groups/ops')
    expect(deleted.statusCode).toBe(204)
    expect((await users.get('bob'))?.groups).toEqual([])
    expect((await api('DELETE', '/groups/ops')).statusCode).toBe(404)
  })

  it('refuses a bad group name with the field', async () => {
    const api = await adminApi()
    for (const body of [{ name: 'Bad Name' }, { name: 'a:b' }, {}, { name: '' }]) {
      const res = await api('POST', '/groups', body)
      expect(res.statusCode, JSON.stringify(body)).toBe(400)
      expect(res.json()).toMatchObject({ code: 'invalid_argument', fields: [expect.any(Object)] })
    }
    expect((await api('POST', '/groups', { name: 'Bad Name' })).json()).toMatchObject({
      fields: [expect.objectContaining({ field: 'name' })],
    })
  })

  it('keeps a loaded plugin’s group, and deletes it once the plugin is unloaded', async () => {
    const api = await adminApi()
    const refused = await api('DELETE', '/groups/team')
    expect(refused.statusCode).toBe(400)
    expect(refused.json()).toMatchObject({
      code: 'invalid_argument',
      message: expect.stringContaining('notes'),
      fields: [expect.objectContaining({ field: 'name' })],
    })
    expect((await users.groups()).map((g) => g.name)).toEqual(['team'])
    expect((await api('POST', '/plugins/notes/unload')).statusCode).toBe(200)
    expect((await api('DELETE', '/groups/team')).statusCode).toBe(204)
    expect(await users.groups()).toEqual([])
  })

  it('is described in OpenAPI', async () => {
    const doc = (await server.app.inject({ url: '/api/v1/openapi.json' })).json() as {
      paths: Record<string, Record<string, unknown>>
    }
    expect(Object.keys(doc.paths['/api/v1/users/{username}'] ?? {})).toEqual(
      expect.arrayContaining(['get', 'patch']),
    )
    expect(Object.keys(doc.paths['/api/v1/users/{username}/groups/{group}'] ?? {})).toEqual(
      expect.arrayContaining(['put', 'delete']),
    )
    expect(Object.keys(doc.paths['/api/v1/groups'] ?? {})).toEqual(expect.arrayContaining(['get', 'post']))
    expect(Object.keys(doc.paths['/api/v1/groups/{name}'] ?? {})).toEqual(['delete'])
  })
})
