import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createBackends, createSqlAuditLog, type SqlDatabase } from '@corral/manager'
import { loadHostSecret } from '../auth/host-secret.js'
import { createUsersStore, type UsersStore } from '../auth/users-store.js'
import { createLogBuffer } from '../log-buffer.js'
import type { PluginManager } from '../manager-api.js'
import { createHostServer, type HostServer } from '../server.js'
import { createFakeManager } from './fake-manager.js'

const templatesDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../templates')

/**
 * A host server over `manager` and `users`, with the host's templates, the audit log and host secret
 * in `database`, and nothing logged: what the HTTP tests and the bench put in front of a manager.
 */
export async function createQuietHostServer(
  manager: PluginManager,
  users: UsersStore,
  database: SqlDatabase,
): Promise<HostServer> {
  return createHostServer({
    manager,
    users,
    database,
    audit: createSqlAuditLog(database),
    logs: createLogBuffer({ log() {} }),
    secret: await loadHostSecret(database),
    templatesDir,
    logger: false,
  })
}

/** Signs in on `server` through the JSON session: the cookie header and CSRF token of later calls. */
export async function signIn(
  server: HostServer,
  username: string,
  password: string,
): Promise<{ cookie: string; csrf: string }> {
  const res = await server.app.inject({
    method: 'POST',
    url: '/api/v1/session',
    payload: { username, password },
  })
  if (res.statusCode !== 200) throw new Error(`sign-in of ${username}: ${res.statusCode} ${res.body}`)
  const cookie = res.cookies.map((c) => `${c.name}=${c.value}`).join('; ')
  return { cookie, csrf: (res.json() as { csrfToken: string }).csrfToken }
}

/** A host server over the in-memory manager and an in-memory SQLite, for the HTTP unit tests. */
export interface FakeHost {
  server: HostServer
  users: UsersStore
  /** {@link signIn} on this host. */
  signIn(username: string, password: string): Promise<{ cookie: string; csrf: string }>
  close(): Promise<void>
}

/**
 * Starts a {@link FakeHost} with users `admin` (administrator, password `admin-password`) and `bob`
 * (`bob-password`), and the plugin `notes`, which declares the group `team` and serves `GET /team`
 * to its members only. The group is in the users store, as the real manager puts it there at load.
 */
export async function startFakeHost(): Promise<FakeHost> {
  const backends = await createBackends({ sqlitePath: ':memory:' })
  const users = createUsersStore(backends.database)
  await users.migrate()
  await users.create({ username: 'admin', password: 'admin-password', admin: true })
  await users.create({ username: 'bob', password: 'bob-password' })
  await users.ensureGroup('team', 'The team.')
  const manager = createFakeManager([
    {
      name: 'notes',
      requested: [],
      status: 'approved',
      routes: [{ method: 'GET', path: '/team', handler: 'page', middleware: ['auth', 'group:team'] }],
      groups: [{ name: 'team', description: 'The team.' }],
      functions: { page: () => '<p>team</p>' },
    },
  ])
  const server = await createQuietHostServer(manager, users, backends.database)
  return {
    server,
    users,
    signIn: (username, password) => signIn(server, username, password),
    async close() {
      await server.close()
      await backends.close()
    },
  }
}
