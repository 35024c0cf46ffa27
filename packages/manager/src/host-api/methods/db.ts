import { type EffectiveGrant, type Permission, PluginError } from '@corral/types'
import { z } from 'zod'
import type { SqlPrincipal, SqlRunOptions } from '../../backends/sql-database.js'
import { defineMethod, type HostCallScope } from '../method-handler.js'

/**
 * The most a statement's text may be: values belong in `args`. The host never parses it; the
 * database checks it as the plugin, in the executor (SQLite) or on the server (PostgreSQL).
 */
const maxSqlLength = 16_384

const sqlArgs = z.strictObject({
  sql: z.string().min(1).max(maxSqlLength, `must be at most ${maxSqlLength} characters; bind values as args`),
  args: z
    .array(z.union([z.string(), z.number(), z.boolean(), z.null()]))
    .max(1000)
    .default([]),
})

/** Principals made from grants: a grant lookup hands out the same grant object while it is current. */
const principals = new WeakMap<EffectiveGrant, SqlPrincipal>()

/** The plugin and its `db` grant, which the database enforces (see `SqlRunOptions.principal`). */
function principalOf(scope: HostCallScope): SqlPrincipal {
  const known = principals.get(scope.grant)
  // Keyed by the grant, checked for the plugin: a lookup may give two plugins one grant object.
  if (known?.plugin === scope.plugin) return known
  const granted = dbScopes(scope.grant.permissions)
  const request = scope.request
  const principal: SqlPrincipal =
    request === undefined
      ? { plugin: scope.plugin, ...granted }
      : {
          plugin: scope.plugin,
          ...granted,
          requested: { ...dbScopes(request.permissions), status: scope.grant.status },
        }
  principals.set(scope.grant, principal)
  return principal
}

/** The `db` read and write scopes of some permissions. */
function dbScopes(permissions: readonly Permission[]): { read: string[]; write: string[] } {
  const read: string[] = []
  const write: string[] = []
  for (const permission of permissions) {
    if (permission.type !== 'db') continue
    if (permission.access.includes('read')) read.push(...permission.scope)
    if (permission.access.includes('write')) write.push(...permission.scope)
  }
  return { read, write }
}

/**
 * How the database runs a statement: as the plugin, within its grant, which the database itself
 * enforces (a refusal is `permission_denied` naming the object); not past the deadline; its
 * changes kept only if the caller still waits for them.
 */
function runOptions(sql: string, scope: HostCallScope, maxRows?: number): SqlRunOptions {
  scope.describe(sql)
  return {
    timeoutMs: Math.max(1, scope.deadline - scope.deps.now()),
    keep: () => scope.commitBeforeDeadline(),
    owner: scope.plugin,
    principal: principalOf(scope),
    maxRows,
  }
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
    const max = scope.deps.limits.dbMaxRows
    const rows = await scope.deps.database.query(sql, args, runOptions(sql, scope, max))
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
    const rowsAffected = await scope.deps.database.exec(sql, args, runOptions(sql, scope))
    return { rows_affected: rowsAffected }
  },
})
