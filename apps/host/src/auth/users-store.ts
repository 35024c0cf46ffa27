import { createHash, randomBytes } from 'node:crypto'
import type { SqlDatabase } from '@corral/manager'
import { PluginError } from '@corral/types'
import { checkNewPassword, hashPassword, verifyPassword } from './passwords.js'

/** A user as pages, routes and plugins see it: never the password hash. */
export interface User {
  username: string
  admin: boolean
  groups: string[]
  /** A disabled user cannot sign in and has no session (a signed-in user is never disabled). */
  disabled: boolean
}

/** A group of the host database, with the users in it. */
export interface Group {
  name: string
  description: string
  members: string[]
}

/** What an administrator changes of a user; what is left out stays. */
export interface UserChange {
  admin?: boolean
  disabled?: boolean
  /** A new password: the user's sessions end. */
  password?: string
}

/** A signed-in session: the id is what the cookie holds; the database keeps only its hash. */
export interface Session {
  id: string
  user: User
  expiresAt: number
}

/** Users, groups and sessions in the host's database (SQLite embedded, PostgreSQL distributed). */
export interface UsersStore {
  /** Creates the tables if they are missing. */
  migrate(): Promise<void>
  count(): Promise<number>
  list(): Promise<User[]>
  get(username: string): Promise<User | undefined>
  /** `already_exists` when the name is taken, `invalid_argument` for a bad name or a password too short or over 72 bytes. */
  create(input: { username: string; password: string; admin?: boolean; groups?: string[] }): Promise<User>
  /** Replaces the user's groups, creating the groups that do not exist yet. */
  setGroups(username: string, groups: string[]): Promise<User>
  /**
   * Changes a user's admin flag, disabled flag or password. `invalid_argument` when it would leave
   * no enabled administrator; disabling or a new password ends the user's sessions.
   */
  update(username: string, change: UserChange): Promise<User>
  /** Puts a user into an existing group (`not_found` for an unknown user or group). */
  addToGroup(username: string, group: string): Promise<User>
  removeFromGroup(username: string, group: string): Promise<User>
  /** The user, when the password is right; undefined otherwise (unknown user or wrong password alike). */
  authenticate(username: string, password: string): Promise<User | undefined>
  /** Makes a group known (plugins' groups are created as they register); keeps an existing one. */
  ensureGroup(name: string, description?: string): Promise<void>
  /** `already_exists` when the name is taken, `invalid_argument` for a bad name. */
  createGroup(name: string, description?: string): Promise<Group>
  /** Deletes a group and its memberships (`not_found` when there is none). */
  deleteGroup(name: string): Promise<void>
  groups(): Promise<Group[]>
  openSession(username: string, ttlMs: number): Promise<Session>
  /** The live session of this id, if any. */
  session(id: string): Promise<Session | undefined>
  closeSession(id: string): Promise<void>
}

export interface UsersStoreOptions {
  /** Epoch milliseconds. Default `Date.now`. */
  now?: () => number
  /**
   * How long a session read from the database is reused. A logout or a change of the user (groups,
   * admin, disabled) on this replica takes effect at its next request; on another replica within
   * this time. Default 2000 ms; 0 reads every time.
   */
  sessionCacheMs?: number
}

const usernamePattern = /^[a-z0-9][a-z0-9._-]{0,63}$/
/** What a plugin's manifest allows for a group name, so that `group:<name>` can name every group. */
const groupPattern = /^[a-z0-9][a-z0-9_-]{0,62}$/

/** A real bcrypt hash (of a password no row has) to check an unknown user's attempt against. */
const unknownUserHash = '$2b$10$5ZcgjwULltHDObjNymQjEOi1f5qf9yzQyNe2TbbwRCTFIbIMbYFx.'

const sessionKey = (id: string) => createHash('sha256').update(id).digest('hex')

function checkGroupName(name: string, field: string): void {
  if (!groupPattern.test(name))
    throw new PluginError('invalid_argument', `a group name is 1-63 of a-z, 0-9, "_", "-": ${name}`, {
      fields: [{ field, message: 'must match ^[a-z0-9][a-z0-9_-]{0,62}$' }],
    })
}

/**
 * Sets `admin` ($2) and `disabled` ($3) of user $1 unless that leaves no enabled administrator: the
 * user stays one, or another one exists. One statement checks and changes. SQLite runs one writer
 * at a time; PostgreSQL first locks every enabled administrator's row (`FOR UPDATE`, always in one
 * order, so that two changes cannot deadlock): two administrators demoting each other at once are
 * serialised, and the second sees the first's change.
 */
const keepAnAdministrator: Record<SqlDatabase['dialect'], string> = {
  sqlite:
    'UPDATE corral_users SET admin = $2, disabled = $3 WHERE username = $1 AND (($2 = 1 AND $3 = 0) OR EXISTS (SELECT 1 FROM corral_users o WHERE o.username <> $1 AND o.admin = 1 AND o.disabled = 0))',
  postgresql:
    'WITH admins AS (SELECT username FROM corral_users WHERE admin = 1 AND disabled = 0 ORDER BY username FOR UPDATE) UPDATE corral_users SET admin = $2, disabled = $3 WHERE username = $1 AND (($2 = 1 AND $3 = 0) OR EXISTS (SELECT 1 FROM admins o WHERE o.username <> $1))',
}

/**
 * The users store on `database`: tables `corral_users`, `corral_user_groups`, `corral_groups`,
 * `corral_sessions`. Passwords are bcrypt hashes; session ids are stored as their SHA-256, so a
 * copy of the database opens no session.
 *
 * @example
 * const users = createUsersStore(backends.database, { now: Date.now })
 * await users.migrate()
 * const user = await users.authenticate('admin', password)
 */
export function createUsersStore(database: SqlDatabase, options: UsersStoreOptions = {}): UsersStore {
  const now = options.now ?? Date.now
  const sessionCacheMs = options.sessionCacheMs ?? 2000
  /** Sessions read lately, by id: every request with a cookie asks, most of them within a second. */
  const sessions = new Map<string, { session: Session; until: number }>()

  async function groupsOf(username: string): Promise<string[]> {
    const rows = await database.query(
      'SELECT group_name FROM corral_user_groups WHERE username = $1 ORDER BY group_name',
      [username],
    )
    return rows.map((row) => String(row.group_name))
  }
  async function load(username: string): Promise<User | undefined> {
    const [row] = await database.query(
      'SELECT username, admin, disabled FROM corral_users WHERE username = $1',
      [username],
    )
    if (row === undefined) return undefined
    return {
      username: String(row.username),
      admin: Number(row.admin) === 1,
      groups: await groupsOf(username),
      disabled: Number(row.disabled) === 1,
    }
  }
  async function existing(username: string): Promise<User> {
    const user = await load(username)
    if (user === undefined) throw new PluginError('not_found', `no user ${username}`)
    return user
  }
  /**
   * Drops this replica's cached sessions of `username`, so that its next request reads the change.
   * Called after the change is written: a request in between must not cache the old user again.
   */
  function forget(username: string): void {
    for (const [id, cached] of sessions) if (cached.session.user.username === username) sessions.delete(id)
  }
  async function closeSessionsOf(username: string): Promise<void> {
    await database.exec('DELETE FROM corral_sessions WHERE username = $1', [username])
    forget(username)
  }
  /** Adds the `disabled` column to a users table made before it existed. */
  async function addDisabledColumn(): Promise<void> {
    if (database.dialect === 'postgresql') {
      await database.exec(
        'ALTER TABLE corral_users ADD COLUMN IF NOT EXISTS disabled INTEGER NOT NULL DEFAULT 0',
        [],
      )
      return
    }
    const rows = await database.query(
      "SELECT name FROM pragma_table_info('corral_users') WHERE name = 'disabled'",
      [],
    )
    if (rows.length === 0)
      await database.exec('ALTER TABLE corral_users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0', [])
  }

  const store: UsersStore = {
    async migrate() {
      for (const sql of [
        'CREATE TABLE IF NOT EXISTS corral_users (username TEXT PRIMARY KEY, password_hash TEXT NOT NULL, admin INTEGER NOT NULL, created_at BIGINT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0)',
        'CREATE TABLE IF NOT EXISTS corral_groups (name TEXT PRIMARY KEY, description TEXT NOT NULL)',
        'CREATE TABLE IF NOT EXISTS corral_user_groups (username TEXT NOT NULL, group_name TEXT NOT NULL, PRIMARY KEY (username, group_name))',
        'CREATE TABLE IF NOT EXISTS corral_sessions (id_hash TEXT PRIMARY KEY, username TEXT NOT NULL, expires_at BIGINT NOT NULL)',
      ]) {
        await database.exec(sql, [])
      }
      await addDisabledColumn()
    },
    async count() {
      const [row] = await database.query('SELECT COUNT(*) AS n FROM corral_users', [])
      return Number(row?.n ?? 0)
    },
    async list() {
      const rows = await database.query('SELECT username FROM corral_users ORDER BY username', [])
      const users = await Promise.all(rows.map((row) => load(String(row.username))))
      return users.filter((user): user is User => user !== undefined)
    },
    get: load,
    async create({ username, password, admin = false, groups = [] }) {
      if (!usernamePattern.test(username))
        throw new PluginError('invalid_argument', 'a username is 1-64 of a-z, 0-9, ".", "_", "-"', {
          fields: [{ field: 'username', message: 'must match ^[a-z0-9][a-z0-9._-]{0,63}$' }],
        })
      checkNewPassword(password)
      for (const group of groups) checkGroupName(group, 'groups')
      if ((await load(username)) !== undefined)
        throw new PluginError('already_exists', `user ${username} already exists`)
      await database.exec(
        'INSERT INTO corral_users (username, password_hash, admin, created_at) VALUES ($1, $2, $3, $4)',
        [username, await hashPassword(password), admin ? 1 : 0, now()],
      )
      return store.setGroups(username, groups)
    },
    async setGroups(username, groups) {
      for (const group of groups) checkGroupName(group, 'groups')
      await existing(username)
      await database.exec('DELETE FROM corral_user_groups WHERE username = $1', [username])
      for (const group of new Set(groups)) {
        await store.ensureGroup(group)
        await database.exec('INSERT INTO corral_user_groups (username, group_name) VALUES ($1, $2)', [
          username,
          group,
        ])
      }
      forget(username)
      return existing(username)
    },
    async update(username, change) {
      const user = await existing(username)
      if (change.password !== undefined) checkNewPassword(change.password)
      const admin = change.admin ?? user.admin
      const disabled = change.disabled ?? user.disabled
      const changed = await database.exec(keepAnAdministrator[database.dialect], [
        username,
        admin ? 1 : 0,
        disabled ? 1 : 0,
      ])
      if (changed === 0) {
        const field = change.admin === false ? 'admin' : 'disabled'
        throw new PluginError('invalid_argument', `${username} is the last administrator`, {
          fields: [{ field, message: 'the host keeps at least one enabled administrator' }],
        })
      }
      if (change.password !== undefined)
        await database.exec('UPDATE corral_users SET password_hash = $2 WHERE username = $1', [
          username,
          await hashPassword(change.password),
        ])
      if (disabled || change.password !== undefined) await closeSessionsOf(username)
      forget(username)
      return existing(username)
    },
    async addToGroup(username, group) {
      await existing(username)
      const [row] = await database.query('SELECT name FROM corral_groups WHERE name = $1', [group])
      if (row === undefined) throw new PluginError('not_found', `no group ${group}`)
      await database.exec(
        'INSERT INTO corral_user_groups (username, group_name) VALUES ($1, $2) ON CONFLICT DO NOTHING',
        [username, group],
      )
      forget(username)
      return existing(username)
    },
    async removeFromGroup(username, group) {
      await existing(username)
      await database.exec('DELETE FROM corral_user_groups WHERE username = $1 AND group_name = $2', [
        username,
        group,
      ])
      forget(username)
      return existing(username)
    },
    async authenticate(username, password) {
      const [row] = await database.query(
        'SELECT password_hash, disabled FROM corral_users WHERE username = $1',
        [username],
      )
      // An unknown user costs a hash too, so that timing does not tell which names exist.
      const hash = row === undefined ? unknownUserHash : String(row.password_hash)
      const ok = await verifyPassword(password, hash)
      return ok && row !== undefined && Number(row.disabled) === 0 ? load(username) : undefined
    },
    async ensureGroup(name, description = '') {
      const [row] = await database.query('SELECT name FROM corral_groups WHERE name = $1', [name])
      if (row === undefined)
        await database.exec(
          'INSERT INTO corral_groups (name, description) VALUES ($1, $2) ON CONFLICT DO NOTHING',
          [name, description],
        )
    },
    async createGroup(name, description = '') {
      checkGroupName(name, 'name')
      const [row] = await database.query('SELECT name FROM corral_groups WHERE name = $1', [name])
      if (row !== undefined) throw new PluginError('already_exists', `group ${name} already exists`)
      await database.exec('INSERT INTO corral_groups (name, description) VALUES ($1, $2)', [
        name,
        description,
      ])
      return { name, description, members: [] }
    },
    async deleteGroup(name) {
      const members = await database.query('SELECT username FROM corral_user_groups WHERE group_name = $1', [
        name,
      ])
      await database.exec('DELETE FROM corral_user_groups WHERE group_name = $1', [name])
      const deleted = await database.exec('DELETE FROM corral_groups WHERE name = $1', [name])
      for (const member of members) forget(String(member.username))
      if (deleted === 0) throw new PluginError('not_found', `no group ${name}`)
    },
    async groups() {
      const rows = await database.query(
        'SELECT g.name, g.description, m.username FROM corral_groups g LEFT JOIN corral_user_groups m ON m.group_name = g.name ORDER BY g.name, m.username',
        [],
      )
      const groups = new Map<string, Group>()
      for (const row of rows) {
        const name = String(row.name)
        const group = groups.get(name) ?? { name, description: String(row.description), members: [] }
        if (row.username !== null) group.members.push(String(row.username))
        groups.set(name, group)
      }
      return [...groups.values()]
    },
    async openSession(username, ttlMs) {
      const user = await load(username)
      if (user === undefined) throw new PluginError('not_found', `no user ${username}`)
      const id = randomBytes(32).toString('base64url')
      const expiresAt = now() + ttlMs
      await database.exec('DELETE FROM corral_sessions WHERE expires_at <= $1', [now()])
      await database.exec('INSERT INTO corral_sessions (id_hash, username, expires_at) VALUES ($1, $2, $3)', [
        sessionKey(id),
        username,
        expiresAt,
      ])
      return { id, user, expiresAt }
    },
    async session(id) {
      const cached = sessions.get(id)
      if (cached !== undefined && cached.until > now() && cached.session.expiresAt > now())
        return cached.session
      sessions.delete(id)
      // One statement: this runs on every request that carries a session cookie.
      const rows = await database.query(
        'SELECT u.username, u.admin, s.expires_at, g.group_name FROM corral_sessions s JOIN corral_users u ON u.username = s.username LEFT JOIN corral_user_groups g ON g.username = u.username WHERE s.id_hash = $1 AND s.expires_at > $2 AND u.disabled = 0 ORDER BY g.group_name',
        [sessionKey(id), now()],
      )
      const [first] = rows
      if (first === undefined) return undefined
      const groups = rows.flatMap((row) => (row.group_name === null ? [] : [String(row.group_name)]))
      const user = {
        username: String(first.username),
        admin: Number(first.admin) === 1,
        groups,
        disabled: false,
      }
      const session = { id, user, expiresAt: Number(first.expires_at) }
      if (sessionCacheMs > 0) {
        // Bounded: an attacker's stream of made-up ids never reaches here (they find no row).
        if (sessions.size >= 10_000) sessions.clear()
        sessions.set(id, { session, until: now() + sessionCacheMs })
      }
      return session
    },
    async closeSession(id) {
      sessions.delete(id)
      await database.exec('DELETE FROM corral_sessions WHERE id_hash = $1', [sessionKey(id)])
    },
  }
  return store
}
