/**
 * The check of a plugin's SQLite statement against its grant, from the program SQLite compiled for
 * it (`EXPLAIN`), not from its text: every table and index the program opens is named by its root
 * page and database, trigger and foreign-key subprograms included, and every virtual table by the
 * module instance it opens. Runs in the executor, on the connection and in the transaction the
 * statement then runs in (see `sqlite-executor.ts`).
 *
 * The plugin's connection has its own database as `main` (index 0: all of it is the plugin's), the
 * temporary database (1, kept empty) and the application's database attached as `public` (2: only
 * granted tables).
 */
import { matchAnyScope } from '@corral/manifest/scope-glob'
import { PluginError } from '@corral/types'
import type { SqlPrincipal } from './sql-database.js'

/** One row of `EXPLAIN`. */
export interface VdbeOp {
  opcode: string
  p1: number
  p2: number
  p3: number
  p4: string | number | null
  p5: number
}

/** `OP_JournalMode`'s p3 when it only reads the journal mode (SQLite's PAGER_JOURNALMODE_QUERY). */
const journalModeQuery = -1

/** Database indexes on a plugin's connection. */
export const ownDb = 0
export const tempDb = 1
export const appDb = 2

/** What the check needs besides the program. */
export interface GrantCheckContext {
  principal: SqlPrincipal
  /** Root page of the application database → the table it stores (an index's table for an index). */
  appTables: ReadonlyMap<number, string>
  /** The `p4` of `VOpen` for the virtual-table modules a plugin may use (`json_each`, `json_tree`) on this connection. */
  allowedVtabs: ReadonlySet<string>
  /** The statement returns rows: then every table it opens must be readable. */
  returnsRows: boolean
}

/**
 * Statement kinds a plugin may run, by their first keyword (which decides a statement's kind in
 * SQLite's grammar): PRAGMA, ATTACH, VACUUM, transactions and the rest compile to programs that
 * open no table, so they are refused here.
 */
const allowedKeywords = new Set([
  'select',
  'with',
  'values',
  'insert',
  'replace',
  'update',
  'delete',
  'create',
  'drop',
  'alter',
])

/** Functions a program may not call: they reach past the tables (files, extensions, other databases). */
const deniedFunctions = new Set(['sqlite_attach', 'sqlite_detach', 'load_extension', 'fts3_tokenizer'])

/** `p5` flag of `OpenRead`/`OpenWrite`: `p2` is a register holding the root page, not the page. */
const p2IsRegister = 0x10

/** SQLite folds ASCII letters only; so do the grant checks (JavaScript's `toLowerCase` folds more). */
export function foldAscii(name: string): string {
  return name.replace(/[A-Z]/g, (c) => c.toLowerCase())
}

/** Tables of the application database no grant reaches: the host's and SQLite's own (catalog, statistics). */
function isReserved(table: string): boolean {
  return /^(sqlite_|corral_)/.test(foldAscii(table))
}

function denied(message: string): PluginError {
  return new PluginError('permission_denied', message)
}

/** The first keyword of a statement, past blanks and comments (lower-case), or what stands there instead. */
export function firstKeyword(sql: string): string {
  let i = 0
  for (;;) {
    while (i < sql.length && /\s/.test(sql[i] as string)) i++
    if (sql.startsWith('--', i)) {
      const end = sql.indexOf('\n', i)
      i = end < 0 ? sql.length : end + 1
    } else if (sql.startsWith('/*', i)) {
      const end = sql.indexOf('*/', i + 2)
      i = end < 0 ? sql.length : end + 2
    } else break
  }
  const word = /^[A-Za-z]+/.exec(sql.slice(i, i + 20))
  return word === null ? sql.slice(i, i + 1) : foldAscii(word[0])
}

/** Statements SQLite knows that a plugin may not run. */
const deniedKeywords = new Set([
  'pragma',
  'attach',
  'detach',
  'vacuum',
  'analyze',
  'reindex',
  'begin',
  'commit',
  'end',
  'rollback',
  'savepoint',
  'release',
  'explain',
])

/**
 * Refuses a statement whose kind a plugin may not run, before it is even compiled; and one that
 * names `sqlite_sequence`: the program opens it for AUTOINCREMENT writes as it would for a read of
 * it (the counters of every table), and a plugin never needs to name it.
 */
export function checkStatementKind(sql: string): void {
  if (foldAscii(sql).includes('sqlite_sequence'))
    throw denied('table sqlite_sequence is reserved to the host')
  const keyword = firstKeyword(sql)
  if (allowedKeywords.has(keyword)) return
  if (deniedKeywords.has(keyword)) {
    throw denied(
      `${keyword.toUpperCase()} statements are not allowed: SELECT, INSERT, UPDATE, DELETE, and CREATE, ALTER, DROP of your own tables are`,
    )
  }
  throw new PluginError('invalid_argument', `SQL must start with a statement keyword, not "${keyword}"`)
}

/**
 * Throws `permission_denied`, naming the table and what to ask for, unless every table the program
 * opens is the plugin's own or granted for what the program does with it.
 */
export function checkProgram(ops: readonly VdbeOp[], context: GrantCheckContext): void {
  const reads = new Set<string>()
  const writes = new Set<string>()
  /** What the program does in the plugin's own database: nothing, reads, or writes (DDL included). */
  let own: 'none' | 'read' | 'write' = 'none'
  const ownWrite = () => {
    own = 'write'
  }
  const table = (page: number, op: VdbeOp): string => {
    const name = op.p5 & p2IsRegister ? undefined : context.appTables.get(page)
    if (name === undefined)
      throw denied('the statement opens an object of the application database no grant names')
    return name
  }
  for (const op of ops) {
    switch (op.opcode) {
      case 'OpenRead':
      case 'OpenWrite':
      case 'ReopenIdx': {
        const db = op.p3
        if (db === ownDb) {
          if (op.opcode === 'OpenWrite') ownWrite()
          else if (own === 'none') own = 'read'
          break
        }
        // The temporary database's catalog, which renaming an own table updates too; it stays empty
        // (the executor refuses a statement that leaves anything in it).
        if (db === tempDb && op.p2 === 1 && !(op.p5 & p2IsRegister)) break
        if (db !== appDb) throw denied('temporary tables are not allowed; create your own tables instead')
        ;(op.opcode === 'OpenWrite' ? writes : reads).add(table(op.p2, op))
        break
      }
      case 'Clear':
        // DELETE without WHERE empties the table at once.
        if (op.p2 === appDb) writes.add(table(op.p1, op))
        else if (op.p2 === ownDb) ownWrite()
        else throw denied('temporary tables are not allowed; create your own tables instead')
        break
      case 'Destroy':
        if (op.p3 !== ownDb) throw denied('only your own tables and indexes can be dropped')
        ownWrite()
        break
      case 'CreateBtree':
        if (op.p1 !== ownDb) throw denied('tables and indexes can only be created among your own tables')
        ownWrite()
        break
      case 'DropTable':
      case 'DropIndex':
      case 'DropTrigger':
        if (op.p1 !== ownDb) throw denied('only your own tables, indexes and triggers can be dropped')
        ownWrite()
        break
      case 'VOpen':
        if (!context.allowedVtabs.has(String(op.p4))) {
          throw denied('virtual tables other than json_each and json_tree are not allowed')
        }
        break
      case 'VCreate':
      case 'VDestroy':
        throw denied('virtual tables cannot be created or dropped')
      // Only PRAGMA and VACUUM compile to these, and the statement kind is checked first: a second line.
      case 'Vacuum':
      case 'IntegrityCk':
      case 'Checkpoint':
        throw denied(`${op.opcode} is not allowed`)
      case 'JournalMode':
        // Its query form (p3 = PAGER_JOURNALMODE_QUERY) changes nothing: SQLite adds it to a
        // statement that turned out to do nothing (CREATE … IF NOT EXISTS of an existing table) so
        // that the statement does not count as read-only. Any other form is refused as above.
        if (op.p3 === journalModeQuery) break
        throw denied(`${op.opcode} is not allowed`)
      case 'Function':
      case 'PureFunc': {
        const name = foldAscii(String(op.p4).replace(/\(.*$/, ''))
        if (deniedFunctions.has(name)) throw denied(`SQL function ${name}() is not allowed`)
        break
      }
    }
  }
  checkOwn(own, context.principal)
  checkTables(reads, writes, context)
}

/**
 * The plugin's own database is its own, whatever its tables are called, but using it is still the
 * administrator's call: reading it takes a `db` grant of any scope, writing it (DDL included) a
 * `db` write grant of any scope. A plugin granted only reads writes nothing, its own tables included.
 */
function checkOwn(own: 'none' | 'read' | 'write', principal: SqlPrincipal): void {
  const { requested } = principal
  if (own === 'write' && principal.write.length === 0) {
    throw denied(
      requested !== undefined && requested.write.length > 0
        ? `writing your own tables needs a db write grant; plugin.yaml asks for db write, ${notGranted(requested.status)}`
        : 'writing your own tables needs a db write grant; ask for db write in plugin.yaml',
    )
  }
  if (own === 'read' && principal.read.length === 0 && principal.write.length === 0) {
    throw denied(
      requested !== undefined && requested.read.length + requested.write.length > 0
        ? `reading your own tables needs a db grant; plugin.yaml asks for db, ${notGranted(requested.status)}`
        : 'reading your own tables needs a db grant; ask for db in plugin.yaml',
    )
  }
}

/** Why a permission the manifest asks for is missing: the administrator's decision, not plugin.yaml. */
function notGranted(status: string): string {
  return status === 'pending_review'
    ? 'but the plugin is pending review: an administrator has not approved it yet'
    : `but the administrator has not granted it (policy ${status}: approve the plugin or add it to its grants)`
}

function checkTables(reads: Set<string>, writes: Set<string>, context: GrantCheckContext): void {
  const { principal } = context
  const { requested } = principal
  const canRead = (t: string) => matchAnyScope(principal.read.map(foldAscii), foldAscii(t))
  const canWrite = (t: string) => matchAnyScope(principal.write.map(foldAscii), foldAscii(t))
  const asked = (scopes: readonly string[] | undefined, t: string) =>
    scopes !== undefined && matchAnyScope(scopes.map(foldAscii), foldAscii(t))
  // AUTOINCREMENT keeps its counters in sqlite_sequence: bookkeeping of a granted write.
  const grantedWrite = [...writes].some((t) => !isReserved(t) && canWrite(t))
  const bookkeeping = (t: string) => grantedWrite && foldAscii(t) === 'sqlite_sequence'
  for (const t of [...reads, ...writes]) {
    if (isReserved(t) && !bookkeeping(t)) throw denied(`table ${t} is reserved to the host`)
  }
  for (const t of writes) {
    if (!bookkeeping(t) && !canWrite(t)) {
      throw denied(
        requested !== undefined && asked(requested.write, t)
          ? `db write on table ${t} is not granted; plugin.yaml asks for it, ${notGranted(requested.status)}`
          : `db write on table ${t} is not granted; add it to the db write scopes in plugin.yaml`,
      )
    }
  }
  for (const t of reads) {
    // A statement that returns nothing may read what it writes (WHERE, constraints, cascades).
    const readForWrite = !context.returnsRows && writes.has(t)
    if (!bookkeeping(t) && !readForWrite && !canRead(t)) {
      throw denied(
        requested !== undefined && asked(requested.read, t)
          ? `db read on table ${t} is not granted; plugin.yaml asks for it, ${notGranted(requested.status)}`
          : `db read on table ${t} is not granted; add it to the db read scopes in plugin.yaml`,
      )
    }
  }
}
