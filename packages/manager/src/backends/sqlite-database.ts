import { PluginError } from '@corral/types'
import Database from 'better-sqlite3'
import { jsonRow, type SqlDatabase, type SqlRunOptions, type SqlValue } from './sql-database.js'

/** Options of {@link createSqliteDatabase}. */
export interface SqliteDatabaseOptions {
  /** A file path, or `:memory:` (the default) for a database that lives as long as the process. */
  path?: string
}

/** `$1`, `$2`, … are named parameters to SQLite; better-sqlite3 binds them from an object keyed `1`, `2`, …. */
function bindings(params: readonly SqlValue[]): Record<string, string | number | null> {
  const named: Record<string, string | number | null> = {}
  params.forEach((value, i) => {
    named[String(i + 1)] = typeof value === 'boolean' ? Number(value) : value
  })
  return named
}

function sqlError(error: unknown): PluginError {
  return PluginError.from(error, 'invalid_argument')
}

/**
 * The embedded database: SQLite through better-sqlite3, in one file or in memory. Needs no set-up.
 *
 * @example
 * const db = createSqliteDatabase({ path: 'data/corral.db' })
 * await db.query('SELECT * FROM stats_daily WHERE day = $1', ['2026-11-21'])
 */
export function createSqliteDatabase(options: SqliteDatabaseOptions = {}): SqlDatabase {
  const db = new Database(options.path ?? ':memory:')
  db.pragma('journal_mode = WAL')
  db.pragma('foreign_keys = ON')

  function prepare(sql: string, run: SqlRunOptions | undefined): Database.Statement {
    let statement: Database.Statement
    try {
      statement = db.prepare(sql)
    } catch (error) {
      throw sqlError(error)
    }
    if (run?.readOnly === true && !statement.readonly) {
      throw new PluginError(
        'permission_denied',
        'the statement writes to the database but was checked as a read',
      )
    }
    return statement
  }

  const mainVersion = db.prepare('PRAGMA main.schema_version').pluck()
  const tempVersion = db.prepare('PRAGMA temp.schema_version').pluck()
  const version = () => `${mainVersion.get()}/${tempVersion.get()}`
  // Root page → table, per schema version: the plan names pages, not tables.
  let pages: { version: string; byPage: Map<string, string> } | undefined
  // The tables a statement opens depend on its text and the schema, not on its parameters.
  const plans = new Map<string, { version: string; opened: { reads: string[]; writes: string[] } }>()
  function tableOfPage(version: string): Map<string, string> {
    if (pages?.version !== version) {
      const byPage = new Map<string, string>([
        ['0:1', 'sqlite_schema'],
        ['1:1', 'temp.sqlite_schema'],
      ])
      for (const [index, schema] of [
        [0, 'main'],
        [1, 'temp'],
      ] as const) {
        const rows = db
          .prepare(`SELECT tbl_name, rootpage FROM ${schema}.sqlite_schema WHERE rootpage > 0`)
          .all() as {
          tbl_name: string
          rootpage: number
        }[]
        for (const row of rows) {
          // A bare name finds a temp table first: the plan names it as the statement did.
          byPage.set(`${index}:${row.rootpage}`, row.tbl_name.toLowerCase())
        }
      }
      pages = { version, byPage }
    }
    return pages.byPage
  }

  return {
    dialect: 'sqlite',
    async opened(sql, params) {
      const current = version()
      const known = plans.get(sql)
      if (known?.version === current) return known.opened
      let plan: { opcode: string; p2: number; p3: number }[]
      try {
        plan = db.prepare(`EXPLAIN ${sql}`).all(bindings(params)) as typeof plan
      } catch (error) {
        throw sqlError(error)
      }
      const byPage = tableOfPage(current)
      const reads = new Set<string>()
      const writes = new Set<string>()
      for (const op of plan) {
        if (op.opcode !== 'OpenRead' && op.opcode !== 'OpenWrite') continue
        // An attached database (p3 > 1) cannot be named by a grant: report it as such.
        const table = byPage.get(`${op.p3}:${op.p2}`) ?? `db${op.p3}.page${op.p2}`
        ;(op.opcode === 'OpenRead' ? reads : writes).add(table)
      }
      const opened = { reads: [...reads], writes: [...writes] }
      plans.delete(sql)
      plans.set(sql, { version: current, opened })
      if (plans.size > 1000) plans.delete(plans.keys().next().value as string)
      return opened
    },
    async query(sql, params, run) {
      const statement = prepare(sql, run)
      try {
        if (!statement.reader) {
          statement.run(bindings(params))
          return []
        }
        return (statement.all(bindings(params)) as Record<string, unknown>[]).map(jsonRow)
      } catch (error) {
        throw sqlError(error)
      }
    },
    async exec(sql, params, run) {
      const statement = prepare(sql, run)
      try {
        if (statement.reader) {
          // A statement that returns rows (INSERT … RETURNING): it changed as many rows as it returned.
          const rows = statement.all(bindings(params))
          return statement.readonly ? 0 : rows.length
        }
        return statement.run(bindings(params)).changes
      } catch (error) {
        throw sqlError(error)
      }
    },
    async close() {
      db.close()
    },
  }
}
