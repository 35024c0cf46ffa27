/**
 * The SQLite executor: a child process that runs plugins' statements on its own connection to the
 * host's database file, one at a time, for `SqliteExecutorPool`. It is a process, not a worker
 * thread, because a runaway statement cannot be interrupted (better-sqlite3 12 has no
 * `sqlite3_interrupt`): only killing the process stops it at once, and with it its CPU use and its
 * write lock, which a terminated thread would keep until the statement ends on its own. SQLite
 * rolls back whatever a killed process had not committed.
 *
 * Started as `sqlite-executor.js <database file>`; speaks {@link ExecutorRequest} /
 * {@link ExecutorReply} over the IPC channel.
 */
import Database from 'better-sqlite3'
import { jsonRow, type SqlValue } from './sql-database.js'
import {
  type ExecutorReply,
  type ExecutorRequest,
  executorBusyTimeoutMs,
  sqlBindings,
} from './sqlite-executor-protocol.js'

const path = process.argv[2]
if (path === undefined || process.send === undefined) {
  process.stderr.write('sqlite-executor: start me with fork(file, [databaseFile])\n')
  process.exit(2)
}

function reply(message: ExecutorReply): void {
  process.send?.(message)
}

/** A statement returned more rows than the caller takes. */
class TooManyRows extends Error {}

function failure(id: number, error: unknown): void {
  const sqliteCode = (error as { code?: unknown }).code
  // Another connection's write lock outlasted the wait: the database is busy, the statement is fine.
  const busy = sqliteCode === 'SQLITE_BUSY' || sqliteCode === 'SQLITE_LOCKED'
  reply({
    id,
    kind: 'error',
    code: error instanceof TooManyRows ? 'resource_exhausted' : busy ? 'unavailable' : 'invalid_argument',
    message: (error as Error).message,
  })
}

/**
 * Reads the rows a statement returns, one at a time: kept as JSON values (and past `maxRows`, the
 * rest is never read) or only counted.
 */
function readRows(
  statement: Database.Statement,
  params: Record<string, SqlValue>,
  request: Extract<ExecutorRequest, { kind: 'run' }>,
): { rows: Record<string, unknown>[]; count: number } {
  const rows: Record<string, unknown>[] = []
  let count = 0
  for (const row of statement.iterate(params) as IterableIterator<Record<string, unknown>>) {
    count++
    if (!request.returnRows) continue
    if (request.maxRows !== undefined && count > request.maxRows) {
      throw new TooManyRows(`the query returned more than ${request.maxRows} rows; add a LIMIT`)
    }
    rows.push(jsonRow(row))
  }
  return { rows, count }
}

function open(file: string): Database.Database {
  try {
    // A writer waits here, not on the host's thread; the pool kills this process at the deadline anyway.
    return new Database(file, { fileMustExist: true, timeout: executorBusyTimeoutMs })
  } catch (error) {
    // The pool fails the waiting statements with `unavailable`; the host's log says why.
    process.stderr.write(`sqlite-executor: cannot open ${file}: ${(error as Error).message}\n`)
    process.exit(1)
  }
}

const db = open(path)
db.pragma('foreign_keys = ON')
const begin = db.prepare('BEGIN IMMEDIATE')
const commit = db.prepare('COMMIT')
const rollback = db.prepare('ROLLBACK')
/** The writing statement whose changes wait for the pool's `commit`. */
let pending: number | undefined

/** Statements prepared before, most recently used last: plugins repeat theirs. */
const statements = new Map<string, Database.Statement>()
function prepared(sql: string): Database.Statement {
  let statement = statements.get(sql)
  if (statement === undefined) statement = db.prepare(sql)
  statements.delete(sql)
  statements.set(sql, statement)
  if (statements.size > 200) statements.delete(statements.keys().next().value as string)
  return statement
}

function run(request: Extract<ExecutorRequest, { kind: 'run' }>): void {
  const { id } = request
  let statement: Database.Statement
  try {
    statement = prepared(request.sql)
  } catch (error) {
    failure(id, error)
    return
  }
  if (request.readOnly && !statement.readonly) {
    reply({
      id,
      kind: 'error',
      code: 'permission_denied',
      message: 'the statement writes to the database but was checked as a read',
    })
    return
  }
  const params = sqlBindings(request.params)
  if (statement.readonly) {
    try {
      const rows = statement.reader ? readRows(statement, params, request).rows : []
      reply({ id, kind: 'done', rows, changes: 0 })
    } catch (error) {
      failure(id, error)
    }
    return
  }
  // A write is committed only when the pool says so once it has run: the caller may have been told
  // `deadline_exceeded` meanwhile, and then the pool kills this process and nothing of it stays.
  try {
    begin.run()
  } catch (error) {
    failure(id, error)
    return
  }
  try {
    let rows: Record<string, unknown>[] = []
    let changes: number
    if (statement.reader) {
      // INSERT … RETURNING: it changed as many rows as it returned.
      const read = readRows(statement, params, request)
      rows = read.rows
      changes = read.count
    } else {
      changes = statement.run(params).changes
    }
    pending = id
    reply({ id, kind: 'ran', rows, changes })
  } catch (error) {
    if (db.inTransaction) rollback.run()
    failure(id, error)
  }
}

function commitPending(request: Extract<ExecutorRequest, { kind: 'commit' }>): void {
  if (pending !== request.id) return
  pending = undefined
  try {
    commit.run()
    reply({ id: request.id, kind: 'committed' })
  } catch (error) {
    if (db.inTransaction) rollback.run()
    failure(request.id, error)
  }
}

process.on('message', (message: ExecutorRequest) => {
  if (message.kind === 'run') run(message)
  else commitPending(message)
})
// The host went away: nothing is left to answer to.
process.on('disconnect', () => process.exit(0))
reply({ id: 0, kind: 'ready' })
