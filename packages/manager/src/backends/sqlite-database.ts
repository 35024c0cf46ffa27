import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { PluginError } from '@corral/types'
import Database from 'better-sqlite3'
import { jsonRow, type SqlDatabase, type SqlRunOptions, type SqlValue } from './sql-database.js'
import { SqliteExecutorPool } from './sqlite-executor-pool.js'
import { sqlBindings } from './sqlite-executor-protocol.js'

/** Options of {@link createSqliteDatabase}. */
export interface SqliteDatabaseOptions {
  /**
   * A file path, or `:memory:` (the default) for a database that lives as long as this object: a
   * file in a temporary directory, removed by `close()` (plugins' statements run in other
   * processes, which cannot share an in-memory database).
   */
  path?: string
  /**
   * Executor processes kept for plugin statements, each running one at a time. Default 4; a plugin
   * with none running gets one even when all are busy.
   */
  maxExecutors?: number
  /** How long a host statement waits, without blocking the thread, for a plugin's write lock. Default 30 000 ms. */
  hostBusyTimeoutMs?: number
}

function sqlError(error: unknown): PluginError {
  return PluginError.from(error, 'invalid_argument')
}

function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown }).code
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED'
}

/** The database file, and the temporary directory to remove on close for `:memory:`. */
function databaseFile(path: string): { file: string; temporaryDir?: string } {
  if (path !== ':memory:' && path !== '') return { file: resolve(path) }
  const temporaryDir = mkdtempSync(join(tmpdir(), 'corral-sqlite-'))
  return { file: join(temporaryDir, 'corral.db'), temporaryDir }
}

/**
 * The embedded database: SQLite through better-sqlite3, in one file (WAL mode). Needs no set-up.
 *
 * The host's own statements (no `timeoutMs`: policies, audit, outbox) run on a connection in the
 * host's thread, and never wait there: while another connection holds the write lock, they retry
 * after a pause. A statement with a `timeoutMs` (a plugin's, through the host API) runs in an
 * executor process that is killed at the deadline (see `SqliteExecutorPool`); a write of it
 * commits only if the caller still waits for it (`keep`). Plans (`opened`) come from a read-only
 * connection that, like the executors', has no temporary tables: the plan seen is the plan run.
 *
 * @example
 * const db = createSqliteDatabase({ path: 'data/corral.db' })
 * await db.query('SELECT * FROM stats_daily WHERE day = $1', ['2026-11-21'])
 */
export function createSqliteDatabase(options: SqliteDatabaseOptions = {}): SqlDatabase {
  const { file, temporaryDir } = databaseFile(options.path ?? ':memory:')
  const hostBusyTimeoutMs = options.hostBusyTimeoutMs ?? 30_000
  // No busy wait in the host's thread: a lock held elsewhere is waited for by pausing (below).
  const db = new Database(file, { timeout: 0 })
  db.pragma('journal_mode = WAL')
  db.pragma('foreign_keys = ON')
  const planner = new Database(file, { readonly: true, timeout: 0 })
  planner.pragma('foreign_keys = ON')
  const executors = new SqliteExecutorPool({
    path: file,
    ...(options.maxExecutors === undefined ? {} : { maxExecutors: options.maxExecutors }),
  })

  /** Runs work on a connection of this thread; when the database is locked, tries again later. */
  async function withoutBlocking<T>(work: () => T): Promise<T> {
    const until = Date.now() + hostBusyTimeoutMs
    for (let pause = 1; ; pause = Math.min(pause * 2, 50)) {
      try {
        return work()
      } catch (error) {
        if (!isBusy(error)) throw error
        if (Date.now() >= until) {
          throw new PluginError('unavailable', 'the database stayed locked by another connection', {
            cause: error,
          })
        }
      }
      await sleep(pause)
    }
  }

  function prepare(sql: string, run: SqlRunOptions | undefined): Database.Statement {
    let statement: Database.Statement
    try {
      statement = db.prepare(sql)
    } catch (error) {
      if (isBusy(error)) throw error
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

  /** A host statement, on the host's connection. */
  function runHere<T>(sql: string, run: SqlRunOptions | undefined, use: (s: Database.Statement) => T) {
    return withoutBlocking(() => {
      const statement = prepare(sql, run)
      try {
        return use(statement)
      } catch (error) {
        if (isBusy(error)) throw error
        throw sqlError(error)
      }
    })
  }

  /** A statement bounded by a deadline, in an executor. */
  function runInExecutor(
    sql: string,
    params: readonly SqlValue[],
    run: SqlRunOptions & { timeoutMs: number },
    returnRows: boolean,
  ) {
    return executors.run({
      sql,
      params,
      readOnly: run.readOnly === true,
      returnRows,
      timeoutMs: run.timeoutMs,
      ...(run.maxRows === undefined ? {} : { maxRows: run.maxRows }),
      ...(run.keep === undefined ? {} : { keep: run.keep }),
      ...(run.owner === undefined ? {} : { owner: run.owner }),
    })
  }

  const schemaVersion = planner.prepare('PRAGMA main.schema_version').pluck()
  // Root page → table, per schema version: the plan names pages, not tables.
  let pages: { version: number; byPage: Map<string, string> } | undefined
  // The tables a statement opens depend on its text and the schema, not on its parameters.
  const plans = new Map<string, { version: number; opened: { reads: string[]; writes: string[] } }>()
  function tableOfPage(version: number): Map<string, string> {
    if (pages?.version !== version) {
      const byPage = new Map<string, string>([['0:1', 'sqlite_schema']])
      const rows = planner
        .prepare('SELECT tbl_name, rootpage FROM main.sqlite_schema WHERE rootpage > 0')
        .all() as { tbl_name: string; rootpage: number }[]
      for (const row of rows) byPage.set(`0:${row.rootpage}`, row.tbl_name.toLowerCase())
      pages = { version, byPage }
    }
    return pages.byPage
  }
  function plan(sql: string, params: readonly SqlValue[]): { reads: string[]; writes: string[] } {
    const current = schemaVersion.get() as number
    const known = plans.get(sql)
    if (known?.version === current) return known.opened
    // First: reading the catalog also brings this connection's copy of the schema, which EXPLAIN
    // compiles against, up to date with changes made by the other connections.
    const byPage = tableOfPage(current)
    let ops: { opcode: string; p2: number; p3: number }[]
    try {
      ops = planner.prepare(`EXPLAIN ${sql}`).all(sqlBindings(params)) as typeof ops
    } catch (error) {
      if (isBusy(error)) throw error
      throw sqlError(error)
    }
    const reads = new Set<string>()
    const writes = new Set<string>()
    for (const op of ops) {
      if (op.opcode !== 'OpenRead' && op.opcode !== 'OpenWrite') continue
      // Another schema (p3 > 0: temp, attached) cannot be named by a grant: report it as such.
      const table = byPage.get(`${op.p3}:${op.p2}`) ?? `db${op.p3}.page${op.p2}`
      ;(op.opcode === 'OpenRead' ? reads : writes).add(table)
    }
    const opened = { reads: [...reads], writes: [...writes] }
    plans.delete(sql)
    plans.set(sql, { version: current, opened })
    if (plans.size > 1000) plans.delete(plans.keys().next().value as string)
    return opened
  }

  return {
    dialect: 'sqlite',
    opened: (sql, params) => withoutBlocking(() => plan(sql, params)),
    async query(sql, params, run) {
      if (run?.timeoutMs !== undefined) {
        return (await runInExecutor(sql, params, { ...run, timeoutMs: run.timeoutMs }, true)).rows
      }
      return runHere(sql, run, (statement) => {
        if (!statement.reader) {
          statement.run(sqlBindings(params))
          return []
        }
        return (statement.all(sqlBindings(params)) as Record<string, unknown>[]).map(jsonRow)
      })
    },
    async exec(sql, params, run) {
      if (run?.timeoutMs !== undefined) {
        return (await runInExecutor(sql, params, { ...run, timeoutMs: run.timeoutMs }, false)).changes
      }
      return runHere(sql, run, (statement) => {
        if (statement.reader) {
          // A statement that returns rows (INSERT … RETURNING): it changed as many rows as it returned.
          const rows = statement.all(sqlBindings(params))
          return statement.readonly ? 0 : rows.length
        }
        return statement.run(sqlBindings(params)).changes
      })
    },
    async close() {
      await executors.close()
      planner.close()
      db.close()
      if (temporaryDir !== undefined) rmSync(temporaryDir, { recursive: true, force: true })
    },
  }
}
