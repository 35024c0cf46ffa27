import { type Backends, createBackends } from '@corral/manager'
import { freshPostgresDatabase } from '@corral/manager/testing'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createUsersStore, type UsersStore } from './users-store.js'

// The users store over real SQLite and the manager's private PostgreSQL: what an administrator
// changes of users and groups, and what that does to their sessions.

const databases = {
  SQLite: () => createBackends({ sqlitePath: ':memory:' }),
  PostgreSQL: async () =>
    createBackends({ sqlitePath: ':memory:', databaseUrl: await freshPostgresDatabase('users_store') }),
}

describe.each(Object.entries(databases))('the users store on %s', (_name, open) => {
  let backends: Backends
  let users: UsersStore

  beforeEach(async () => {
    backends = await open()
    // A long cache: a change must drop it, not wait for it to expire.
    users = createUsersStore(backends.database, { sessionCacheMs: 3600_000 })
    await users.migrate()
    await users.create({ username: 'root', password: 'root-password', admin: true })
    await users.create({ username: 'bea', password: 'bea-password' })
  })
  afterEach(async () => {
    await backends.close()
  })

  it('keeps one enabled administrator: the last one is neither demoted nor disabled', async () => {
    await expect(users.update('root', { admin: false })).rejects.toMatchObject({
      code: 'invalid_argument',
      fields: [expect.objectContaining({ field: 'admin' })],
    })
    await expect(users.update('root', { disabled: true })).rejects.toMatchObject({
      code: 'invalid_argument',
      fields: [expect.objectContaining({ field: 'disabled' })],
    })
    expect(await users.get('root')).toMatchObject({ admin: true, disabled: false })

    expect(await users.update('bea', { admin: true })).toMatchObject({ admin: true })
    expect(await users.update('root', { admin: false })).toMatchObject({ admin: false })
    // A disabled administrator does not count.
    await users.update('root', { admin: true })
    await users.update('root', { disabled: true })
    await expect(users.update('bea', { admin: false })).rejects.toMatchObject({ code: 'invalid_argument' })
    expect((await users.get('bea'))?.admin).toBe(true)
  })

  it('keeps an administrator when two demote each other at the same instant', async () => {
    await users.update('bea', { admin: true })
    // Each round starts two changes together, each of which alone is allowed: at most one may pass.
    for (let round = 0; round < 20; round++) {
      const results = await Promise.allSettled([
        users.update('root', { admin: false }),
        users.update('bea', { admin: false }),
      ])
      expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1)
      const admins = (await users.list()).filter((user) => user.admin && !user.disabled)
      expect(admins).toHaveLength(1)
      await users.update('root', { admin: true })
      await users.update('bea', { admin: true })
    }
  })

  it('disables a user: no sign-in, no session, until enabled again', async () => {
    const session = await users.openSession('bea', 60_000)
    expect(await users.session(session.id)).toBeDefined()
    expect(await users.update('bea', { disabled: true })).toMatchObject({ disabled: true })
    expect(await users.session(session.id)).toBeUndefined()
    expect(await users.authenticate('bea', 'bea-password')).toBeUndefined()
    await users.update('bea', { disabled: false })
    expect(await users.authenticate('bea', 'bea-password')).toMatchObject({ username: 'bea' })
    // Enabling does not bring the ended session back.
    expect(await users.session(session.id)).toBeUndefined()
  })

  it('resets a password: the old one fails, the new one works, the sessions end', async () => {
    const session = await users.openSession('bea', 60_000)
    await users.session(session.id)
    await expect(users.update('bea', { password: 'short' })).rejects.toMatchObject({
      code: 'invalid_argument',
      fields: [expect.objectContaining({ field: 'password' })],
    })
    expect(await users.authenticate('bea', 'bea-password')).toBeDefined()
    await users.update('bea', { password: 'another-password' })
    expect(await users.authenticate('bea', 'bea-password')).toBeUndefined()
    expect(await users.authenticate('bea', 'another-password')).toMatchObject({ username: 'bea' })
    expect(await users.session(session.id)).toBeUndefined()
  })

  it('shows a membership change in the user’s next session read, through the cache', async () => {
    const session = await users.openSession('bea', 60_000)
    expect((await users.session(session.id))?.user.groups).toEqual([])
    await users.createGroup('viewers', 'May view.')
    await users.addToGroup('bea', 'viewers')
    expect((await users.session(session.id))?.user.groups).toEqual(['viewers'])
    await users.removeFromGroup('bea', 'viewers')
    expect((await users.session(session.id))?.user.groups).toEqual([])
    await users.addToGroup('bea', 'viewers')
    await users.deleteGroup('viewers')
    expect((await users.session(session.id))?.user.groups).toEqual([])
    await users.update('root', { disabled: false })
    await users.update('bea', { admin: true })
    expect((await users.session(session.id))?.user.admin).toBe(true)
  })

  it('creates, lists and deletes groups, with their members', async () => {
    await users.createGroup('team', 'The team.')
    await users.addToGroup('bea', 'team')
    await users.addToGroup('root', 'team')
    // Adding twice is the same membership.
    await users.addToGroup('bea', 'team')
    expect(await users.groups()).toEqual([
      { name: 'team', description: 'The team.', members: ['bea', 'root'] },
    ])
    await expect(users.createGroup('team')).rejects.toMatchObject({ code: 'already_exists' })
    for (const bad of ['Team', 'a:b', '', '-x', 'x'.repeat(64)])
      await expect(users.createGroup(bad), bad).rejects.toMatchObject({
        code: 'invalid_argument',
        fields: [expect.objectContaining({ field: 'name' })],
      })
    await expect(users.addToGroup('bea', 'ghosts')).rejects.toMatchObject({ code: 'not_found' })
    await expect(users.addToGroup('nobody', 'team')).rejects.toMatchObject({ code: 'not_found' })
    await expect(users.update('nobody', { admin: true })).rejects.toMatchObject({ code: 'not_found' })

    await users.deleteGroup('team')
    expect(await users.groups()).toEqual([])
    expect((await users.get('bea'))?.groups).toEqual([])
    await expect(users.deleteGroup('team')).rejects.toMatchObject({ code: 'not_found' })
  })

  it('adds the disabled column to a users table made before it', async () => {
    const { database } = backends
    await database.exec('DROP TABLE corral_users', [])
    await database.exec(
      'CREATE TABLE corral_users (username TEXT PRIMARY KEY, password_hash TEXT NOT NULL, admin INTEGER NOT NULL, created_at BIGINT NOT NULL)',
      [],
    )
    await users.migrate()
    await users.create({ username: 'old', password: 'old-password', admin: true })
    expect(await users.get('old')).toMatchObject({ admin: true, disabled: false })
    // Migrating again changes nothing.
    await users.migrate()
    expect(await users.update('old', { password: 'new-password' })).toMatchObject({ disabled: false })
  })
})
