import { defaultPolicy, parsePolicy } from '@corral/manifest'
import type { ResourcePolicy } from '@corral/types'
import type { SqlDatabase } from '../backends/sql-database.js'

/** Where administrators' {@link ResourcePolicy} decisions live. Policies change live. */
export interface PolicyStore {
  /**
   * The stored policy of `plugin`, or the restrictive default policy if none is stored. `fresh`
   * reads the database now rather than a briefly kept copy: another replica has just stored one.
   */
  get(plugin: string, options?: { fresh?: boolean }): Promise<ResourcePolicy>
  /** Validates (`parsePolicy`) and stores a policy, stamping `updated_at`; returns what was stored. */
  put(policy: unknown, options?: { by?: string }): Promise<ResourcePolicy>
  /** Every stored policy, by plugin name. */
  list(): Promise<ResourcePolicy[]>
  /** Removes a stored policy (the plugin falls back to the default); whether there was one. */
  delete(plugin: string): Promise<boolean>
}

/** Options of {@link createSqlPolicyStore}. */
export interface SqlPolicyStoreOptions {
  /**
   * How long a policy read from the database is reused. A `put` on this store takes effect at
   * once; a `put` by another host replica within this time, or at once where that replica says so
   * (`get` with `fresh`). A read that a write or a later read overtook is not kept. Default
   * 1000 ms; 0 reads every time.
   */
  cacheMs?: number
  /** Epoch milliseconds. Default `Date.now`. */
  now?: () => number
}

/**
 * A policy as an administrator writes it, which `parsePolicy` reads back: `access` only on the
 * permission types that have one.
 */
function wireForm(policy: ResourcePolicy): unknown {
  return {
    ...policy,
    grants: policy.grants.map(({ access, ...rest }) => (access.length > 0 ? { ...rest, access } : rest)),
  }
}

/** Creates the host's own tables once per database; both dialects read this DDL the same way. */
const migrations = new WeakMap<SqlDatabase, Promise<void>>()

/** @internal Creates the tables of the policy store, audit log and outbox if they are missing. */
export function migrateHostTables(database: SqlDatabase): Promise<void> {
  let done = migrations.get(database)
  if (done === undefined) {
    const id = database.dialect === 'sqlite' ? 'INTEGER PRIMARY KEY AUTOINCREMENT' : 'BIGSERIAL PRIMARY KEY'
    const statements = [
      'CREATE TABLE IF NOT EXISTS corral_policies (plugin TEXT PRIMARY KEY, policy TEXT NOT NULL, updated_at TEXT NOT NULL)',
      `CREATE TABLE IF NOT EXISTS corral_audit (id ${id}, at BIGINT NOT NULL, plugin TEXT NOT NULL, method TEXT NOT NULL, code TEXT NOT NULL, message TEXT NOT NULL, token TEXT, chain TEXT, detail TEXT)`,
      'CREATE INDEX IF NOT EXISTS corral_audit_plugin ON corral_audit (plugin, id)',
      `CREATE TABLE IF NOT EXISTS corral_outbox (id ${id}, at BIGINT NOT NULL, plugin TEXT NOT NULL, message_id TEXT NOT NULL, sender TEXT NOT NULL, recipients TEXT NOT NULL, subject TEXT NOT NULL, body TEXT NOT NULL, html TEXT)`,
    ]
    done = (async () => {
      for (const sql of statements) await database.exec(sql, [])
    })()
    done.catch(() => migrations.delete(database))
    migrations.set(database, done)
  }
  return done
}

/**
 * The policy store on the host's SQL database (SQLite embedded, PostgreSQL at scale), table
 * `corral_policies`. Policies are validated with `parsePolicy` both ways.
 *
 * @example
 * const policies = createSqlPolicyStore(backends.database)
 * await policies.put({ plugin: 'stats', status: 'approved', grants: [{ type: 'db', access: ['read'], scope: ['stats_*'] }] })
 */
export function createSqlPolicyStore(
  database: SqlDatabase,
  options: SqlPolicyStoreOptions = {},
): PolicyStore {
  const cacheMs = options.cacheMs ?? 1000
  const now = options.now ?? Date.now
  const cache = new Map<string, { policy: ResourcePolicy; until: number }>()
  /**
   * Reads are numbered as they start, writes as they finish. `newest` holds, per plugin, the number
   * of the read that last filled its cache entry or of the write that last emptied it. A read
   * numbered lower started before that one, and may bring back an older policy (its answer late,
   * from a slow pooled connection, say): it does not fill the cache.
   */
  let sequence = 0
  const newest = new Map<string, number>()

  /** Empties the plugin's cache entry once a write to its row is done. */
  function forget(plugin: string): void {
    cache.delete(plugin)
    newest.set(plugin, ++sequence)
  }

  return {
    async get(plugin, getOptions = {}) {
      const cached = cache.get(plugin)
      if (cached !== undefined && cached.until > now() && !getOptions.fresh) return cached.policy
      const started = ++sequence
      await migrateHostTables(database)
      const rows = await database.query('SELECT policy FROM corral_policies WHERE plugin = $1', [plugin])
      const policy =
        rows[0] === undefined ? defaultPolicy(plugin) : parsePolicy(JSON.parse(String(rows[0].policy)))
      if (cacheMs > 0 && started > (newest.get(plugin) ?? 0)) {
        cache.set(plugin, { policy, until: now() + cacheMs })
        newest.set(plugin, started)
      }
      return policy
    },
    async put(input, putOptions = {}) {
      const parsed = parsePolicy(input)
      const policy: ResourcePolicy = { ...parsed, updated_at: new Date(now()).toISOString() }
      if (putOptions.by !== undefined) policy.updated_by = putOptions.by
      await migrateHostTables(database)
      await database.exec(
        'INSERT INTO corral_policies (plugin, policy, updated_at) VALUES ($1, $2, $3) ON CONFLICT (plugin) DO UPDATE SET policy = excluded.policy, updated_at = excluded.updated_at',
        [policy.plugin, JSON.stringify(wireForm(policy)), policy.updated_at ?? ''],
      )
      forget(policy.plugin)
      return policy
    },
    async list() {
      await migrateHostTables(database)
      const rows = await database.query('SELECT policy FROM corral_policies ORDER BY plugin', [])
      return rows.map((row) => parsePolicy(JSON.parse(String(row.policy))))
    },
    async delete(plugin) {
      await migrateHostTables(database)
      const deleted = await database.exec('DELETE FROM corral_policies WHERE plugin = $1', [plugin])
      forget(plugin)
      return deleted > 0
    },
  }
}
