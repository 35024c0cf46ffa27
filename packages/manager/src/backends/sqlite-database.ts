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

  return {
    dialect: 'sqlite',
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
