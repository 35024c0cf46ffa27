import { PluginError } from '@corral/types'
import type { Pool, PoolClient, QueryConfig, QueryResult } from 'pg'
import {
  catalogSearchPath,
  ensurePluginRole,
  isSyncedFor,
  type PluginRoleNames,
  pluginRoleNames,
  quoteIdentifier,
  readGrantState,
  syncPluginGrants,
} from './postgres-plugin-roles.js'
import { jsonRow, type SqlDatabase, type SqlPrincipal, type SqlRunOptions } from './sql-database.js'

/** Options of {@link createPostgresDatabase}. */
export interface PostgresDatabaseOptions {
  /** A `postgres://` connection URL (what `DATABASE_URL` holds). */
  url: string
  /** The most connections the host's own pool opens. Default 10. */
  maxConnections?: number
  /** The most connections each plugin's pool opens (as its role). Default 2. */
  maxPluginConnections?: number
  /** The schema of the host's tables, which plugins' grants name. Default `public`. */
  schema?: string
}

/** The bound of a plugin's statement when the caller gives none. */
const defaultTimeoutMs = 30_000

/** A plugin's grant was re-synced (for another policy) while its statement was being checked or ran. */
function grantChanged(): PluginError {
  return new PluginError('unavailable', "the plugin's database grant changed during the statement; try again")
}

/** SQLSTATE classes that mean the server, not the statement, failed. */
function postgresError(error: unknown): PluginError {
  if (error instanceof PluginError) return error
  const code = (error as { code?: unknown }).code
  if (typeof code !== 'string' || code.length !== 5) return PluginError.from(error, 'unavailable')
  if (code === '57014') return PluginError.from(error, 'deadline_exceeded')
  // 28: a plugin role's login refused (pg_hba.conf, or its role changed meanwhile).
  if (code.startsWith('08') || code.startsWith('28') || code.startsWith('53') || code.startsWith('57'))
    return PluginError.from(error, 'unavailable')
  // The server's message names the object; the plugin's author also needs to know what to ask for.
  const message = (error as Error).message
  if (code === '42501') {
    return new PluginError(
      'permission_denied',
      `${message}: no db grant of this plugin covers it (ask for db read, or write, on its name)`,
      { cause: error },
    )
  }
  if (code === '25006') {
    return new PluginError('permission_denied', `${message}: this plugin's db grant is read-only`, {
      cause: error,
    })
  }
  return PluginError.from(error, 'invalid_argument')
}

/**
 * The database at scale: PostgreSQL through a `pg` pool. `pg` is loaded only when this is called,
 * so a host that stays embedded does not load it (it is an optional peer dependency).
 *
 * Statements go through the extended query protocol even without parameters, so the server itself
 * refuses more than one statement per call. A statement with a `principal` runs as that plugin's
 * own role, on its own pool, so the server enforces the plugin's grant (see postgres-plugin-roles.ts).
 *
 * @example
 * const db = await createPostgresDatabase({ url: process.env.DATABASE_URL })
 * await db.query('SELECT * FROM stats_daily', [], { principal: { plugin: 'stats', read: ['stats_*'], write: [] } })
 */
export async function createPostgresDatabase(options: PostgresDatabaseOptions): Promise<SqlDatabase> {
  let pg: typeof import('pg')['default']
  try {
    pg = (await import('pg')).default
  } catch (error) {
    throw new PluginError('unavailable', 'a PostgreSQL URL is given but the "pg" package is not installed', {
      cause: error,
    })
  }
  // 64-bit integers (COUNT(*) among them) arrive as text; make them numbers where they fit.
  const types = {
    getTypeParser: ((oid: number, format?: string) =>
      oid === 20
        ? (text: string) => (Number.isSafeInteger(Number(text)) ? Number(text) : text)
        : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
  }
  const pool: Pool = new pg.Pool({ connectionString: options.url, max: options.maxConnections ?? 10, types })
  // An idle client that loses its connection must not crash the host.
  pool.on('error', () => {})
  try {
    await pool.query('SELECT 1')
  } catch (error) {
    await pool.end()
    throw new PluginError('unavailable', `cannot reach PostgreSQL: ${(error as Error).message}`, {
      cause: error,
    })
  }

  const hostSchema = options.schema ?? 'public'
  const database = ((await pool.query('SELECT current_database() AS name')).rows[0] as { name: string }).name

  /** Borrows a connection of `from` within `timeoutMs`; a connection that comes later goes back. */
  async function connectWithin(from: Pool, timeoutMs: number): Promise<PoolClient> {
    const connecting = from.connect()
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new PluginError('deadline_exceeded', 'no database connection became free in time')),
        timeoutMs,
      )
    })
    try {
      return await Promise.race([connecting, late])
    } catch (error) {
      connecting.then(
        (client) => client.release(),
        () => {},
      )
      throw error
    } finally {
      clearTimeout(timer)
    }
  }

  /** Each plugin's own pool, logged in as its role; made (role, password, schema) on first use. */
  const pluginPools = new Map<string, Promise<{ names: PluginRoleNames; pool: Pool }>>()

  function pluginPool(plugin: string, timeoutMs: number): Promise<{ names: PluginRoleNames; pool: Pool }> {
    let entry = pluginPools.get(plugin)
    if (entry === undefined) {
      entry = (async () => {
        const names = pluginRoleNames(database, plugin)
        const client = await connectWithin(pool, timeoutMs)
        let password: string
        try {
          password = await ensurePluginRole(client, hostSchema, names, timeoutMs)
        } finally {
          client.release()
        }
        const url = new URL(options.url)
        url.username = encodeURIComponent(names.role)
        url.password = encodeURIComponent(password)
        const own: Pool = new pg.Pool({
          connectionString: url.toString(),
          max: options.maxPluginConnections ?? 2,
          idleTimeoutMillis: 10_000,
          types,
        })
        own.on('error', () => {})
        return { names, pool: own }
      })()
      pluginPools.set(plugin, entry)
      // A failed set-up is tried again on the plugin's next statement.
      entry.catch(() => pluginPools.delete(plugin))
    }
    return entry
  }

  /** Re-grants `principal` as the host when what its role holds was synced from another grant or schema. */
  async function syncGrants(names: PluginRoleNames, principal: SqlPrincipal, timeoutMs: number) {
    const client = await connectWithin(pool, timeoutMs)
    try {
      await syncPluginGrants(client, hostSchema, names, principal, timeoutMs)
    } finally {
      client.release()
    }
  }

  /** Runs `work`, which begins a transaction on `client`: committed when it succeeds, rolled back when anything in it fails. */
  async function commitOrRollBack<T>(client: PoolClient, work: () => Promise<T>): Promise<T> {
    try {
      const result = await work()
      await client.query('COMMIT')
      return result
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {})
      throw error
    }
  }

  /**
   * Runs `query` as `principal`, on its own connection: in a transaction whose search path is the
   * plugin's schema, then the host's, bounded by `timeoutMs` from the start (connection, grant sync
   * and statement together). The role's privileges are checked against the grant in that same
   * transaction, right before the statement, and synced first if they differ.
   */
  async function runAs(
    principal: SqlPrincipal,
    query: QueryConfig,
    options: SqlRunOptions,
  ): Promise<QueryResult> {
    const deadline = Date.now() + (options.timeoutMs ?? defaultTimeoutMs)
    const left = () => Math.max(1, Math.ceil(deadline - Date.now()))
    const { names, pool: own } = await pluginPool(principal.plugin, left())
    let client: PoolClient
    try {
      client = await connectWithin(own, left())
    } catch (error) {
      // A refused login (the role or its password changed): set the role up again next time.
      if (String((error as { code?: unknown }).code).startsWith('28')) {
        pluginPools.delete(principal.plugin)
        own.end().catch(() => {})
      }
      throw error
    }
    try {
      return await commitOrRollBack(client, async () => {
        // A plugin granted no writes writes nothing, its own tables included (as on SQLite): the
        // server refuses every write and all DDL in a read-only transaction, and a statement cannot
        // turn it back once the grant check below has run its first query.
        const readOnly = options.readOnly === true || principal.write.length === 0
        await client.query(
          `${readOnly ? 'BEGIN READ ONLY' : 'BEGIN'}; SET LOCAL statement_timeout = ${left()}; ${catalogSearchPath}`,
        )
        let checked = await readGrantState(client, hostSchema)
        if (!isSyncedFor(checked, principal)) {
          await syncGrants(names, principal, left())
          await client.query(`SET LOCAL statement_timeout = ${left()}`)
          checked = await readGrantState(client, hostSchema)
          if (!isSyncedFor(checked, principal)) throw grantChanged()
        }
        await client.query(
          `SET LOCAL search_path = ${quoteIdentifier(names.schema)}, ${quoteIdentifier(hostSchema)}`,
        )
        const result = await client.query(query)
        // The server checked the role's privileges as the statement started: if any re-grant came
        // since the check above, the statement may have run with another grant's, so it does not count.
        await client.query(catalogSearchPath)
        if ((await readGrantState(client, hostSchema)).synced !== checked.synced) throw grantChanged()
        return result
      })
    } finally {
      // Nothing of a statement outlives it on the connection: temporary tables, session settings,
      // advisory locks, LISTEN. A connection that cannot be reset is closed instead.
      const reset = await client.query('DISCARD ALL').then(
        () => undefined,
        (error: Error) => error,
      )
      client.release(reset)
    }
  }

  async function run(
    sql: string,
    params: readonly unknown[],
    options: SqlRunOptions = {},
  ): Promise<QueryResult> {
    // queryMode is in pg, not yet in @types/pg.
    const query = { text: sql, values: [...params], queryMode: 'extended' } as QueryConfig
    try {
      if (options.principal !== undefined) return await runAs(options.principal, query, options)
      if (options.readOnly !== true && options.timeoutMs === undefined) return await pool.query(query)
      // In a transaction of its own: READ ONLY when the statement was checked as a read (the
      // server refuses a write), and a server-side timeout that really cancels the statement.
      const client = await pool.connect()
      try {
        const begin = options.readOnly === true ? 'BEGIN READ ONLY' : 'BEGIN'
        const timeout =
          options.timeoutMs === undefined
            ? ''
            : `; SET LOCAL statement_timeout = ${Math.max(1, Math.ceil(options.timeoutMs))}`
        return await commitOrRollBack(client, async () => {
          await client.query(begin + timeout)
          return client.query(query)
        })
      } finally {
        client.release()
      }
    } catch (error) {
      throw postgresError(error)
    }
  }

  return {
    dialect: 'postgresql',
    async query(sql, params, options) {
      const result = await run(sql, params, options)
      return (result.rows as Record<string, unknown>[]).map(jsonRow)
    },
    async exec(sql, params, options) {
      const result = await run(sql, params, options)
      return result.rowCount ?? 0
    },
    async close() {
      const own = await Promise.allSettled(pluginPools.values())
      await Promise.all(
        own.map((entry) => (entry.status === 'fulfilled' ? entry.value.pool.end() : undefined)),
      )
      await pool.end()
    },
  }
}
