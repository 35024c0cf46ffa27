import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs'
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
   * processes, which cannot share an in-memory database). A new file is made with mode 0600 (so
   * are its -wal and -shm), the plugins' databases beside it in `<file>-plugins`, mode 0700.
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
 * commits only if the caller still waits for it (`keep`).
 *
 * A statement run for a plugin (`principal`) runs on that plugin's connection in an executor: the
 * plugin's own database (`<file>-plugins/<plugin>.sqlite`) is its `main`, where its unqualified
 * CREATE, ALTER and DROP go, and the application's database is attached as `public`. SQLite's
 * compiled program for the statement is checked against the grant there, in the transaction the
 * statement runs in (see `sqlite-grant-check.ts`).
 *
 * @example
 * const db = createSqliteDatabase({ path: 'data/corral.db' })
 * await db.query('SELECT * FROM stats_daily WHERE day = $1', ['2026-11-21'])
 */
export function createSqliteDatabase(options: SqliteDatabaseOptions = {}): SqlDatabase {
  const { file, temporaryDir } = databaseFile(options.path ?? ':memory:')
  const hostBusyTimeoutMs = options.hostBusyTimeoutMs ?? 30_000
  // The host's data is its own: a new file is made readable and writable by its owner only, before
  // SQLite makes it, and SQLite gives its -wal and -shm files the database file's mode.
  closeSync(openSync(file, 'a', 0o600))
  // No busy wait in the host's thread: a lock held elsewhere is waited for by pausing (below).
  const db = new Database(file, { timeout: 0 })
  db.pragma('journal_mode = WAL')
  db.pragma('foreign_keys = ON')
  const executors = new SqliteExecutorPool({
    path: file,
    pluginsDir: `${file}-plugins`,
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

  /** A plugin's statement, or one bounded by a deadline: it runs in an executor. */
  function inExecutor(run: SqlRunOptions | undefined): run is SqlRunOptions {
    return run?.timeoutMs !== undefined || run?.principal !== undefined
  }

  function runInExecutor(sql: string, params: readonly SqlValue[], run: SqlRunOptions, returnRows: boolean) {
    return executors.run({
      sql,
      params,
      readOnly: run.readOnly === true,
      returnRows,
      timeoutMs: run.timeoutMs ?? hostBusyTimeoutMs,
      maxRows: run.maxRows,
      keep: run.keep,
      owner: run.owner,
      principal: run.principal,
    })
  }

  return {
    dialect: 'sqlite',
    async query(sql, params, run) {
      if (inExecutor(run)) return (await runInExecutor(sql, params, run, true)).rows
      return runHere(sql, run, (statement) => {
        if (!statement.reader) {
          statement.run(sqlBindings(params))
          return []
        }
        return (statement.all(sqlBindings(params)) as Record<string, unknown>[]).map(jsonRow)
      })
    },
    async exec(sql, params, run) {
      if (inExecutor(run)) return (await runInExecutor(sql, params, run, false)).changes
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
      db.close()
      if (temporaryDir !== undefined) rmSync(temporaryDir, { recursive: true, force: true })
    },
  }
}
