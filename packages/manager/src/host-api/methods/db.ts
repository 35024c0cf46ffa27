import { matchScope } from '@corral/manifest'
import { PluginError } from '@corral/types'
import { z } from 'zod'
import type { SqlPrincipal, SqlRunOptions, SqlValue } from '../../backends/sql-database.js'
import { defineMethod, type HostCallScope, isGranted } from '../method-handler.js'
import { analyzeSql, type SqlAccess } from '../sql-access.js'

/**
 * Where plugin SQL is still parsed on the host thread (PostgreSQL, see {@link parseChecked}), the cap
 * keeps one statement from stalling the host. Values belong in `args`, which are not parsed.
 */
const maxSqlLength = 16_384

const sqlArgs = z.strictObject({
  sql: z.string().min(1).max(maxSqlLength, `must be at most ${maxSqlLength} characters; bind values as args`),
  args: z
    .array(z.union([z.string(), z.number(), z.boolean(), z.null()]))
    .max(1000)
    .default([]),
})

/**
 * Tables no grant reaches: the host's own (`corral_*`, schema `corral`) and the databases'
 * catalogs (`sqlite_*`; `pg_*`, which PostgreSQL resolves to `pg_catalog` even unqualified;
 * `information_schema`). A grant of `*` means "every table of the application", not these.
 */
function isReserved(table: string): boolean {
  const [schema, name] = table.includes('.') ? table.split('.', 2) : [undefined, table]
  if (schema !== undefined && /^(pg_|information_schema$|corral$)/i.test(schema)) return true
  return /^(sqlite_|pg_|corral_)/i.test(name ?? '')
}

/** Checks every table the statement touches against the grant; throws `permission_denied` on the first miss. */
function checkAccess(access: SqlAccess, scope: HostCallScope): void {
  const { grant, plugin } = scope
  const deny = (message: string) => new PluginError('permission_denied', message, { plugin })
  const own = scope.deps.ownTables(plugin)
  for (const table of [...access.reads, ...access.writes, ...access.ddl]) {
    if (isReserved(table)) throw deny(`table ${table} is reserved to the host`)
  }
  for (const table of access.reads) {
    if (!isGranted(grant, 'db', table, 'read')) throw deny(`db read on table ${table} is not granted`)
  }
  for (const table of access.writes) {
    if (!isGranted(grant, 'db', table, 'write')) throw deny(`db write on table ${table} is not granted`)
  }
  for (const table of access.ddl) {
    if (!matchScope(own, table))
      throw deny(
        `${access.statement.toUpperCase()} on ${table}: only tables matching ${own} are the plugin's own`,
      )
    if (!isGranted(grant, 'db', table, 'write')) throw deny(`db write on table ${table} is not granted`)
  }
}

/** Tables SQLite opens for its own bookkeeping on a plugin's behalf (AUTOINCREMENT counters). */
const bookkeepingTables = new Set(['sqlite_sequence'])

/**
 * The second opinion: the tables the database's own plan opens must be granted too. It catches
 * what a parser could misread, and reads the parse cannot see (a foreign key check reads the
 * referenced table). DDL is left to the parse: it only ever touches the plugin's own tables.
 */
async function checkPlan(
  sql: string,
  args: SqlValue[],
  access: SqlAccess,
  scope: HostCallScope,
): Promise<void> {
  const database = scope.deps.database
  if (database.opened === undefined || access.ddl.length > 0) return
  const opened = await database.opened(sql, args)
  const reads = opened.reads.filter((t) => !bookkeepingTables.has(t))
  const writes = opened.writes.filter((t) => !bookkeepingTables.has(t))
  const planned: SqlAccess = { statement: access.statement, reads, writes, ddl: [] }
  try {
    checkAccess(planned, scope)
  } catch (error) {
    throw new PluginError('permission_denied', `the database's plan: ${(error as PluginError).rawMessage}`, {
      plugin: scope.plugin,
    })
  }
}

/** The plugin and its `db` grant, which the database enforces (see `SqlRunOptions.principal`). */
function principalOf(scope: HostCallScope): SqlPrincipal {
  const read: string[] = []
  const write: string[] = []
  for (const permission of scope.grant.permissions) {
    if (permission.type !== 'db') continue
    if (permission.access.includes('read')) read.push(...permission.scope)
    if (permission.access.includes('write')) write.push(...permission.scope)
  }
  return { plugin: scope.plugin, read, write }
}

/**
 * Transitional, until the PostgreSQL backend enforces `principal` itself (branch db-postgres; drop
 * this function and `checkAccess`/`checkPlan` with that merge): its statements are still parsed and
 * checked here. SQLite enforces the grant in its executor, from the compiled program, and needs no
 * parse.
 */
async function parseChecked(sql: string, args: SqlValue[], scope: HostCallScope): Promise<SqlAccess> {
  const access = analyzeSql(sql, scope.deps.database.dialect)
  const tables = [...new Set([...access.reads, ...access.writes, ...access.ddl])]
  scope.describe(`${access.statement} ${tables.join(',')}`.trim())
  checkAccess(access, scope)
  await checkPlan(sql, args, access, scope)
  return access
}

/**
 * How the database runs a statement: as the plugin, within its grant; not past the deadline; its
 * changes kept only if the caller still waits for them.
 */
async function runOptions(sql: string, args: SqlValue[], scope: HostCallScope): Promise<SqlRunOptions> {
  const options: SqlRunOptions = {
    timeoutMs: Math.max(1, scope.deadline - scope.deps.now()),
    keep: () => scope.commitBeforeDeadline(),
    owner: scope.plugin,
    principal: principalOf(scope),
  }
  if (scope.deps.database.dialect === 'sqlite') {
    scope.describe(sql)
    return options
  }
  const access = await parseChecked(sql, args, scope)
  return { ...options, readOnly: access.writes.length === 0 && access.ddl.length === 0 }
}

/**
 * `db.query`: runs one statement with bound parameters and returns its rows. Needs `db` read on
 * every application table it reads (and write on every one it writes); the plugin's own tables
 * need a `db` grant of any scope (write, to write them).
 */
export const dbQuery = defineMethod({
  args: sqlArgs,
  rateLimit: 'db',
  async run({ sql, args }, scope) {
    const options = await runOptions(sql, args, scope)
    const max = scope.deps.limits.dbMaxRows
    const rows = await scope.deps.database.query(sql, args, { ...options, maxRows: max })
    if (rows.length > max) {
      throw new PluginError('resource_exhausted', `the query returned more than ${max} rows; add a LIMIT`)
    }
    return { rows }
  },
})

/** `db.exec`: runs one statement with bound parameters and returns how many rows it changed. */
export const dbExec = defineMethod({
  args: sqlArgs,
  rateLimit: 'db',
  async run({ sql, args }, scope) {
    const rowsAffected = await scope.deps.database.exec(sql, args, await runOptions(sql, args, scope))
    return { rows_affected: rowsAffected }
  },
})
