/**
 * The two backend sets every backend-facing suite runs against: `embedded` (SQLite in memory,
 * in-process cache, rate limits and events) and `distributed` (the PostgreSQL and Redis servers
 * started by `servers.global-setup.ts`). Each suite file gets its own PostgreSQL database and
 * Redis database, so files running in parallel do not see each other's data.
 */
import pg from 'pg'
import { inject } from 'vitest'
import { type Backends, createBackends } from '../backends/create-backends.js'
import type {} from './provided-context.js'

/** `embedded`: SQLite and in-process; `distributed`: PostgreSQL and Redis. */
export type BackendSetKind = 'embedded' | 'distributed'

/** Both kinds, for `describe.each`. */
export const backendSetKinds: BackendSetKind[] = ['embedded', 'distributed']

/** A clock tests can freeze (rate-limit windows) and that otherwise follows real time (TTLs). */
export interface TestClock {
  now: () => number
  freeze(at?: number): void
  unfreeze(): void
}

/** A {@link TestClock} that starts unfrozen. */
export function createTestClock(): TestClock {
  let frozen: number | undefined
  return {
    now: () => frozen ?? Date.now(),
    freeze(at = Date.now()) {
      frozen = at
    },
    unfreeze() {
      frozen = undefined
    },
  }
}

/** Redis has 16 numbered databases; each suite file asks for its own. */
const redisDatabases: Record<string, number> = {
  db: 1,
  http: 2,
  host: 3,
  smtp: 4,
  policy: 5,
  grants: 6,
  states: 7,
  events: 8,
}

/** A PostgreSQL database of its own for `suite`, created empty. */
export async function freshPostgresDatabase(suite: string): Promise<string> {
  const adminUrl = inject('databaseUrl')
  const name = `corral_test_${suite}`
  const admin = new pg.Client({ connectionString: adminUrl })
  await admin.connect()
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    await admin.query(`CREATE DATABASE ${name}`)
  } finally {
    await admin.end()
  }
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  return url.toString()
}

/** Backend-set URLs of one suite: open them again for a second host replica on the same data. */
export interface BackendSetConfig {
  kind: BackendSetKind
  databaseUrl?: string
  redisUrl?: string
  sqlitePath?: string
}

/** Prepares empty storage for `suite` on backend set `kind`. */
export async function prepareBackendSet(kind: BackendSetKind, suite: string): Promise<BackendSetConfig> {
  if (kind === 'embedded') return { kind, databaseUrl: '', redisUrl: '' }
  const redisDb = redisDatabases[suite]
  if (redisDb === undefined) throw new Error(`no Redis database assigned to suite ${suite}`)
  const redisUrl = `${inject('redisUrl')}/${redisDb}`
  const { Redis } = await import('ioredis')
  const redis = new Redis(redisUrl)
  await redis.flushdb()
  redis.disconnect()
  return { kind, databaseUrl: await freshPostgresDatabase(suite), redisUrl }
}

/** Opens the backends of a prepared set; call again for another replica (distributed) on the same data. */
export function openBackendSet(config: BackendSetConfig, now: () => number): Promise<Backends> {
  return createBackends({
    ...(config.databaseUrl === undefined ? {} : { databaseUrl: config.databaseUrl }),
    ...(config.redisUrl === undefined ? {} : { redisUrl: config.redisUrl }),
    ...(config.sqlitePath === undefined ? {} : { sqlitePath: config.sqlitePath }),
    now,
  })
}
