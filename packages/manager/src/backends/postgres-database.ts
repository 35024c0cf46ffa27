import { PluginError } from '@corral/types'
import type { Pool, QueryConfig, QueryResult } from 'pg'
import { jsonRow, type SqlDatabase, type SqlRunOptions } from './sql-database.js'

/** Options of {@link createPostgresDatabase}. */
export interface PostgresDatabaseOptions {
  /** A `postgres://` connection URL (what `DATABASE_URL` holds). */
  url: string
  /** The most connections the pool opens. Default 10. */
  maxConnections?: number
}

/** One node of PostgreSQL's `EXPLAIN (FORMAT JSON)` plan, as far as the check reads it. */
interface PlanNode {
  'Node Type'?: string
  'Relation Name'?: string
  Schema?: string
  Plans?: PlanNode[]
}

/** SQLSTATE classes that mean the server, not the statement, failed. */
function postgresError(error: unknown): PluginError {
  const code = (error as { code?: unknown }).code
  if (typeof code !== 'string' || code.length !== 5) return PluginError.from(error, 'unavailable')
  if (code === '57014') return PluginError.from(error, 'deadline_exceeded')
  if (code.startsWith('08') || code.startsWith('53') || code.startsWith('57'))
    return PluginError.from(error, 'unavailable')
  // 25006: a write inside a READ ONLY transaction; 42501: the server's own privileges.
  if (code === '25006' || code === '42501') return PluginError.from(error, 'permission_denied')
  return PluginError.from(error, 'invalid_argument')
}

/**
 * The database at scale: PostgreSQL through a `pg` pool. `pg` is loaded only when this is called,
 * so a host that stays embedded does not load it (it is an optional peer dependency).
 *
 * Statements go through the extended query protocol even without parameters, so the server itself
 * refuses more than one statement per call.
 *
 * @example
 * const db = await createPostgresDatabase({ url: process.env.DATABASE_URL })
 */
export async function createPostgresDatabase(options: PostgresDatabaseOptions): Promise<SqlDatabase> {
  let pg: typeof import('pg')['default']
  try {
    pg = (await import('pg')).default
  } catch (error) {
    throw new PluginError('unavailable', 'DATABASE_URL is set but the "pg" package is not installed', {
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

  async function run(
    sql: string,
    params: readonly unknown[],
    options: SqlRunOptions = {},
  ): Promise<QueryResult> {
    // queryMode is in pg, not yet in @types/pg.
    const query = { text: sql, values: [...params], queryMode: 'extended' } as QueryConfig
    try {
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
        await client.query(begin + timeout)
        const result = await client.query(query)
        await client.query('COMMIT')
        return result
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {})
        throw error
      } finally {
        client.release()
      }
    } catch (error) {
      throw postgresError(error)
    }
  }

  // The relations a statement's plan touches depend on its text (and the schema), not on its
  // parameters: kept a short while, so a changed schema is seen soon.
  const plans = new Map<string, { until: number; opened: { reads: string[]; writes: string[] } }>()

  return {
    dialect: 'postgresql',
    async opened(sql, params) {
      const known = plans.get(sql)
      if (known !== undefined && known.until > Date.now()) return known.opened
      const result = await run(`EXPLAIN (VERBOSE, FORMAT JSON) ${sql}`, params)
      const reads = new Set<string>()
      const writes = new Set<string>()
      const visit = (node: PlanNode) => {
        const relation = node['Relation Name']
        if (typeof relation === 'string') {
          const schema = node.Schema
          const name = schema === undefined || schema === 'public' ? relation : `${schema}.${relation}`
          ;(node['Node Type'] === 'ModifyTable' ? writes : reads).add(name)
        }
        for (const child of node.Plans ?? []) visit(child)
      }
      const plan = (result.rows[0] as { 'QUERY PLAN'?: { Plan: PlanNode }[] } | undefined)?.['QUERY PLAN']
      for (const entry of plan ?? []) visit(entry.Plan)
      // The target of an UPDATE or DELETE is scanned to find its rows: that is the write, as in SQLite.
      for (const table of writes) reads.delete(table)
      const opened = { reads: [...reads], writes: [...writes] }
      plans.delete(sql)
      plans.set(sql, { until: Date.now() + 30_000, opened })
      if (plans.size > 1000) plans.delete(plans.keys().next().value as string)
      return opened
    },
    async query(sql, params, options) {
      const result = await run(sql, params, options)
      return (result.rows as Record<string, unknown>[]).map(jsonRow)
    },
    async exec(sql, params, options) {
      const result = await run(sql, params, options)
      return result.rowCount ?? 0
    },
    async close() {
      await pool.end()
    },
  }
}
