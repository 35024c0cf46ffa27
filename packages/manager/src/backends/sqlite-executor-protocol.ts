/** The messages between `SqliteExecutorPool` and its `sqlite-executor` processes. */
import type { SqlPrincipal, SqlValue } from './sql-database.js'

/** What the pool asks of an executor. */
export type ExecutorRequest =
  | {
      kind: 'run'
      id: number
      sql: string
      params: SqlValue[]
      /** The statement was checked as a read: refuse it if SQLite says it writes. */
      readOnly: boolean
      /** Send back the rows it returns (`db.query`), or only count them (`db.exec`). */
      returnRows: boolean
      /** Returned rows past this fail the statement with `resource_exhausted`, unread. */
      maxRows?: number
      /** Run it on this plugin's connection, checked against its grant (see `sqlite-grant-check.ts`). */
      principal?: SqlPrincipal
    }
  /** Commit the changes of the writing statement `id` (the pool kills an executor whose changes must go). */
  | { kind: 'commit'; id: number }

/** What an executor answers. */
export type ExecutorReply =
  /** Started and connected: it takes statements now. */
  | { kind: 'ready'; id: 0 }
  /** A statement that only reads has run. */
  | { kind: 'done'; id: number; rows: Record<string, unknown>[]; changes: number }
  /** A writing statement has run, inside a transaction that waits for a `commit`. */
  | { kind: 'ran'; id: number; rows: Record<string, unknown>[]; changes: number }
  /** The `commit` is done. */
  | { kind: 'committed'; id: number }
  | {
      kind: 'error'
      id: number
      code: 'invalid_argument' | 'permission_denied' | 'resource_exhausted' | 'unavailable'
      message: string
    }

/**
 * How long a statement waits for another connection's write lock. Long: it blocks only its own
 * executor, which is killed at the caller's deadline anyway (the host API caps it at 30 s).
 */
export const executorBusyTimeoutMs = 60_000

/** `$1`, `$2`, … are named parameters to SQLite; better-sqlite3 binds them from an object keyed `1`, `2`, …. */
export function sqlBindings(params: readonly SqlValue[]): Record<string, string | number | null> {
  const named: Record<string, string | number | null> = {}
  params.forEach((value, i) => {
    named[String(i + 1)] = typeof value === 'boolean' ? Number(value) : value
  })
  return named
}
