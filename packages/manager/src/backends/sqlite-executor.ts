/**
 * The SQLite executor: a child process that runs plugins' statements on its own connection to the
 * host's database file, one at a time, for `SqliteExecutorPool`. It is a process, not a worker
 * thread, because a runaway statement cannot be interrupted (better-sqlite3 12 has no
 * `sqlite3_interrupt`): only killing the process stops it at once, and with it its CPU use and its
 * write lock, which a terminated thread would keep until the statement ends on its own. SQLite
 * rolls back whatever a killed process had not committed.
 *
 * A statement run for a plugin (with a principal) runs on that plugin's connection: its own database
 * file as `main`, the application's database attached as `public`. Before it runs, the program
 * SQLite compiled for it is checked against the grant (`sqlite-grant-check.ts`) on that connection,
 * inside the transaction it then runs in: what is checked is what runs.
 *
 * Started as `sqlite-executor.js <database file> <plugins' databases directory>`; reads
 * {@link ExecutorRequest} frames on its standard input and writes {@link ExecutorReply} frames on its
 * standard output (see `encodeFrame`). It has nothing else to do, so it blocks on its input, between
 * statements as within them: no event loop stands between a request and its statement.
 */
import { mkdirSync, readSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { PluginError } from '@corral/types'
import Database from 'better-sqlite3'
import { jsonRow, type SqlPrincipal } from './sql-database.js'
import {
  type ExecutorReply,
  type ExecutorRequest,
  encodeFrame,
  executorBusyTimeoutMs,
  FrameReader,
  sqlBindings,
} from './sqlite-executor-protocol.js'
import { appDb, checkProgram, checkStatementKind, type VdbeOp } from './sqlite-grant-check.js'

const path = process.argv[2]
const pluginsDir = process.argv[3]
if (path === undefined || pluginsDir === undefined) {
  process.stderr.write(
    'sqlite-executor: start me as sqlite-executor.js <database file> <plugins directory>\n',
  )
  process.exit(2)
}

const input = 0
const output = 1

function reply(message: ExecutorReply): void {
  const frame = encodeFrame(message)
  // A pipe may take a large frame in parts; the host reads them as they come.
  for (let written = 0; written < frame.length; ) written += writeSync(output, frame, written)
}

/** A statement returned more rows than the caller takes. */
class TooManyRows extends Error {}

/** SQLite's codes for a statement that needed more memory (the executor's is capped), or a bigger value, than allowed. */
const tooBig = new Set(['SQLITE_NOMEM', 'SQLITE_TOOBIG'])

function failure(id: number, error: unknown): void {
  if (error instanceof PluginError && error.code === 'permission_denied') {
    reply({ id, kind: 'error', code: error.code, message: error.rawMessage })
    return
  }
  const sqliteCode = (error as { code?: unknown }).code
  // Another connection's write lock outlasted the wait: the database is busy, the statement is fine.
  const busy = sqliteCode === 'SQLITE_BUSY' || sqliteCode === 'SQLITE_LOCKED'
  reply({
    id,
    kind: 'error',
    code:
      error instanceof TooManyRows || tooBig.has(sqliteCode as string)
        ? 'resource_exhausted'
        : busy
          ? 'unavailable'
          : 'invalid_argument',
    message: (error as Error).message,
  })
}

/**
 * Reads the rows a statement returns, one at a time: kept as JSON values (and past `maxRows`, the
 * rest is never read) or only counted.
 */
function readRows(
  statement: Database.Statement,
  params: unknown[],
  request: Extract<ExecutorRequest, { kind: 'run' }>,
): { rows: Record<string, unknown>[]; count: number } {
  const rows: Record<string, unknown>[] = []
  let count = 0
  for (const row of statement.iterate(...params) as IterableIterator<Record<string, unknown>>) {
    count++
    if (!request.returnRows) continue
    if (request.maxRows !== undefined && count > request.maxRows) {
      throw new TooManyRows(`the query returned more than ${request.maxRows} rows; add a LIMIT`)
    }
    rows.push(jsonRow(row))
  }
  return { rows, count }
}

function open(file: string, options: Database.Options = {}): Database.Database {
  try {
    // A writer waits here, not on the host's thread; the pool kills this process at the deadline anyway.
    const db = new Database(file, { timeout: executorBusyTimeoutMs, ...options })
    db.pragma('foreign_keys = ON')
    return db
  } catch (error) {
    // The pool fails the waiting statements with `unavailable`; the host's log says why.
    process.stderr.write(`sqlite-executor: cannot open ${file}: ${(error as Error).message}\n`)
    process.exit(1)
  }
}

/** A connection and what is prepared on it. */
class Connection {
  /** Throws for a statement this connection must not prepare; asked once per text (see `prepared`). */
  protected admit(_sql: string): void {}

  readonly begin: Database.Statement
  readonly beginImmediate: Database.Statement
  readonly commit: Database.Statement
  readonly rollback: Database.Statement
  /** Statements prepared before, most recently used last: plugins repeat theirs. */
  readonly #statements = new Map<string, Database.Statement>()

  constructor(readonly db: Database.Database) {
    this.begin = db.prepare('BEGIN')
    this.beginImmediate = db.prepare('BEGIN IMMEDIATE')
    this.commit = db.prepare('COMMIT')
    this.rollback = db.prepare('ROLLBACK')
  }

  prepared(sql: string): Database.Statement {
    let statement = this.#statements.get(sql)
    if (statement === undefined) {
      this.admit(sql)
      statement = this.db.prepare(sql)
    }
    this.#statements.delete(sql)
    this.#statements.set(sql, statement)
    if (this.#statements.size > 200) this.#statements.delete(this.#statements.keys().next().value as string)
    return statement
  }
}

/** A plugin's connection: its own database as `main`, the application's attached as `public`. */
class PluginConnection extends Connection {
  /** See {@link PluginConnection.verify}. */
  readonly #pin: Database.Statement
  readonly #versions: [main: Database.Statement, app: Database.Statement]
  readonly #appTables: Database.Statement
  readonly #tempObjects: Database.Statement
  readonly #allowedVtabs: Set<string>
  #pages: { version: number; byPage: Map<number, string> } | undefined
  /** Statements that passed the check under {@link PluginConnection.#grant}, and at which schema versions. */
  readonly #verified = new Map<string, string>()
  #grant = ''

  constructor(plugin: string) {
    if (!/^[a-z0-9][a-z0-9_-]{0,62}$/.test(plugin))
      throw new PluginError('invalid_argument', 'not a plugin name')
    const db = open(join(pluginsDir as string, `${plugin}.sqlite`))
    db.pragma('journal_mode = WAL')
    db.prepare('ATTACH DATABASE ? AS public').run(path)
    // The check names databases by index: the application's must be the one it expects.
    const attached = db.pragma('database_list') as { seq: number; name: string }[]
    if (attached.find((d) => d.name === 'public')?.seq !== appDb) throw new Error('public is not database 2')
    super(db)
    this.#pin = db.prepare(
      'SELECT (SELECT count(*) FROM main.sqlite_schema) + (SELECT count(*) FROM public.sqlite_schema)',
    )
    this.#versions = [
      db.prepare('PRAGMA main.schema_version').pluck(),
      db.prepare('PRAGMA public.schema_version').pluck(),
    ]
    this.#appTables = db.prepare('SELECT tbl_name, rootpage FROM public.sqlite_schema WHERE rootpage > 0')
    this.#tempObjects = db.prepare('SELECT count(*) FROM temp.sqlite_schema').pluck()
    // Eponymous virtual tables are made once per connection: their instance names them in EXPLAIN.
    this.#allowedVtabs = new Set(
      ['json_each', 'json_tree'].map((module) => {
        const ops = this.explain(`SELECT * FROM ${module}('[]')`)
        return String(ops.find((op) => op.opcode === 'VOpen')?.p4)
      }),
    )
  }

  /** The statement kind depends on its text alone: checked once, when it is first prepared. */
  protected override admit(sql: string): void {
    checkStatementKind(sql)
  }

  explain(sql: string, params: unknown[] = []): VdbeOp[] {
    return this.db.prepare(`EXPLAIN ${sql}`).all(...params) as VdbeOp[]
  }

  /**
   * Checks the statement against the grant, inside the transaction it then runs in. Reading the
   * schema versions starts the transaction's snapshot of both databases; the statement runs against
   * the schema of that snapshot (a statement prepared against another is prepared again when it
   * starts). A verdict is kept per statement, schema versions and grant. Before compiling, the pin
   * brings this connection's copy of the schemas up to date with the snapshot (a stale copy is
   * reloaded when the pin's program starts), so that `EXPLAIN` compiles against the very schema the
   * statement runs against, which no one can change before the commit. `explain` compiles the
   * statement with its parameters bound: called only when there is no verdict to reuse.
   */
  verify(sql: string, returnsRows: boolean, principal: SqlPrincipal, explain: () => VdbeOp[]): void {
    const main = this.#versions[0].get() as number
    const app = this.#versions[1].get() as number
    const grant = `${principal.read.join('\n')}\0${principal.write.join('\n')}`
    if (grant !== this.#grant) {
      this.#verified.clear()
      this.#grant = grant
    }
    const key = `${main}:${app}:${returnsRows}`
    if (this.#verified.get(sql) === key) return
    this.#pin.get()
    checkProgram(explain(), {
      principal,
      appTables: this.#tablesAt(app),
      allowedVtabs: this.#allowedVtabs,
      returnsRows,
    })
    this.#verified.delete(sql)
    this.#verified.set(sql, key)
    if (this.#verified.size > 1000) this.#verified.delete(this.#verified.keys().next().value as string)
  }

  /** Throws unless the temporary database is still empty: its objects would outlive the check. */
  checkTempEmpty(): void {
    if ((this.#tempObjects.get() as number) > 0) {
      throw new PluginError('permission_denied', 'temporary tables, views and triggers are not allowed')
    }
  }

  #tablesAt(version: number): Map<number, string> {
    if (this.#pages?.version !== version) {
      const byPage = new Map<number, string>([[1, 'sqlite_schema']])
      for (const row of this.#appTables.all() as { tbl_name: string; rootpage: number }[]) {
        byPage.set(row.rootpage, row.tbl_name)
      }
      this.#pages = { version, byPage }
    }
    return this.#pages.byPage
  }
}

// The plugins' databases are the host's data, as its own database is: owner only.
mkdirSync(pluginsDir, { recursive: true, mode: 0o700 })
/** The host's own statements bounded by a deadline (no principal). */
const hostConnection = new Connection(open(path, { fileMustExist: true }))
/** Plugins' connections, most recently used last. */
const pluginConnections = new Map<string, PluginConnection>()
function connectionOf(plugin: string): PluginConnection {
  let connection = pluginConnections.get(plugin)
  if (connection === undefined) connection = new PluginConnection(plugin)
  pluginConnections.delete(plugin)
  pluginConnections.set(plugin, connection)
  if (pluginConnections.size > 16) {
    const [oldest, stale] = pluginConnections.entries().next().value as [string, PluginConnection]
    pluginConnections.delete(oldest)
    stale.db.close()
  }
  return connection
}

/** The writing statement whose changes wait for the pool's `commit`, and its connection. */
let pending: { id: number; connection: Connection } | undefined

/** Statements written with `?` placeholders: they take the parameters in order, not by number. */
const positional = new WeakSet<Database.Statement>()

/**
 * Calls `use` with the statement's parameters bound the way it is written: `$1`, `$2`, … by number,
 * `?` in order. better-sqlite3 refuses values for placeholders a statement lacks before it runs
 * anything: that refusal tells which way it is written.
 */
function withParams<T>(
  statement: Database.Statement,
  request: Extract<ExecutorRequest, { kind: 'run' }>,
  use: (params: unknown[]) => T,
): T {
  if (positional.has(statement)) {
    return use(request.params.map((value) => (typeof value === 'boolean' ? Number(value) : value)))
  }
  try {
    return use([sqlBindings(request.params)])
  } catch (error) {
    if (!(error instanceof RangeError) || request.params.length === 0) throw error
    positional.add(statement)
    return withParams(statement, request, use)
  }
}

/** Runs a statement with its parameters: its rows (if it returns any) and how many rows it changed. */
function execute(
  statement: Database.Statement,
  request: Extract<ExecutorRequest, { kind: 'run' }>,
  writes: boolean,
): { rows: Record<string, unknown>[]; changes: number } {
  return withParams(statement, request, (params) => {
    if (!statement.reader) return { rows: [], changes: statement.run(...params).changes }
    const read = readRows(statement, params, request)
    // INSERT … RETURNING: it changed as many rows as it returned.
    return { rows: read.rows, changes: writes ? read.count : 0 }
  })
}

function run(request: Extract<ExecutorRequest, { kind: 'run' }>): void {
  const { id, principal } = request
  let connection: Connection
  let statement: Database.Statement
  try {
    connection = principal === undefined ? hostConnection : connectionOf(principal.plugin)
    statement = connection.prepared(request.sql)
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
  const writes = !statement.readonly
  // A write is committed only when the pool says so once it has run: the caller may have been told
  // `deadline_exceeded` meanwhile, and then the pool kills this process and nothing of it stays.
  try {
    ;(writes ? connection.beginImmediate : connection.begin).run()
  } catch (error) {
    failure(id, error)
    return
  }
  try {
    if (connection instanceof PluginConnection) {
      const plugin = connection
      // Bound values can change the plan (STAT4), never which tables the statement reads or writes.
      plugin.verify(request.sql, statement.reader, principal as SqlPrincipal, () =>
        withParams(statement, request, (params) => plugin.explain(request.sql, params)),
      )
    }
    const { rows, changes } = execute(statement, request, writes)
    if (!writes) {
      connection.commit.run()
      reply({ id, kind: 'done', rows, changes: 0 })
      return
    }
    if (connection instanceof PluginConnection) connection.checkTempEmpty()
    pending = { id, connection }
    reply({ id, kind: 'ran', rows, changes })
  } catch (error) {
    if (connection.db.inTransaction) connection.rollback.run()
    failure(id, error)
  }
}

function commitPending(request: Extract<ExecutorRequest, { kind: 'commit' }>): void {
  if (pending?.id !== request.id) return
  const { connection } = pending
  pending = undefined
  try {
    connection.commit.run()
    reply({ id: request.id, kind: 'committed' })
  } catch (error) {
    if (connection.db.inTransaction) connection.rollback.run()
    failure(request.id, error)
  }
}

const requests = new FrameReader((message) => {
  const request = message as ExecutorRequest
  if (request.kind === 'run') run(request)
  else commitPending(request)
})
reply({ id: 0, kind: 'ready' })
const chunk = Buffer.allocUnsafe(64 << 10)
for (;;) {
  let read = 0
  try {
    read = readSync(input, chunk)
  } catch {
    // Like the end of the input below: the pipe is gone.
  }
  // The host went away, or closed its end: nothing is left to answer to.
  if (read === 0) process.exit(0)
  requests.push(chunk.subarray(0, read))
}
