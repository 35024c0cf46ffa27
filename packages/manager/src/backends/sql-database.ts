import type { PolicyStatus } from '@corral/types'

/** The SQL a database speaks. */
export type SqlDialect = 'sqlite' | 'postgresql'

/** A value a plugin may bind to a `$n` placeholder. */
export type SqlValue = string | number | boolean | null

/** The plugin a statement runs for, and its database grant: the backend enforces it. */
export interface SqlPrincipal {
  /**
   * The plugin's name: its own tables live in its own namespace (SQLite: its own database;
   * PostgreSQL: its own schema), found first for an unqualified name; `public.t` names the
   * application's table `t` on both. Reading them takes a grant of any scope, writing them (DDL
   * included) a write grant of any scope.
   */
  plugin: string
  /** Table-name globs the plugin may read (its effective grant's `db` read scopes). */
  read: readonly string[]
  /** Table-name globs the plugin may write (its effective grant's `db` write scopes). */
  write: readonly string[]
  /**
   * What the plugin's manifest asks for (its `db` read and write scopes) and its policy's status,
   * when known: a refusal then says whether `plugin.yaml` lacks the permission or the administrator
   * has not granted what it asks for. Not part of the grant: nothing is allowed by it.
   */
  requested?: { read: readonly string[]; write: readonly string[]; status: PolicyStatus }
}

/** What running one statement may check on the way, besides running it. */
export interface SqlRunOptions {
  /**
   * The statement must only read: the backend refuses it otherwise (SQLite's `readonly`,
   * PostgreSQL's `READ ONLY` transaction).
   */
  readOnly?: boolean
  /**
   * The statement must not run longer (the causing call's deadline). PostgreSQL cancels it on the
   * server (`statement_timeout`); SQLite runs it in an executor process and kills that process.
   */
  timeoutMs?: number
  /**
   * Asked once a writing statement has run, just before its changes are committed: `false` (the
   * caller was answered meanwhile, with `deadline_exceeded`) rolls them back and the call fails
   * with `deadline_exceeded`; `true` makes them final, and the caller must then get the result.
   * SQLite asks it; PostgreSQL commits as soon as the statement is done.
   */
  keep?: () => boolean
  /**
   * Whose statement it is (the plugin). SQLite always runs one statement per owner at once, so one
   * plugin's slow statements never take every executor from the others.
   */
  owner?: string
  /**
   * The most rows a query may return. SQLite fails it with `resource_exhausted` at the first row
   * past it, without reading the rest; PostgreSQL returns them all (the host API counts them).
   */
  maxRows?: number
  /** Runs the statement as this plugin: the database refuses whatever the grant does not cover (permission_denied). */
  principal?: SqlPrincipal
}

/**
 * A SQL database as the host API and the policy store use it: one statement per call, parameters
 * bound as `$1`, `$2`, … on every backend (PostgreSQL's placeholders, which SQLite also reads).
 * Results are plain JSON values: blobs come back base64, dates as ISO strings, 64-bit integers as
 * strings where they do not fit a number.
 */
export interface SqlDatabase {
  readonly dialect: SqlDialect
  /** Runs a statement and returns its rows (none for a statement that returns no rows). */
  query(sql: string, params: readonly SqlValue[], options?: SqlRunOptions): Promise<Record<string, unknown>[]>
  /** Runs a statement and returns how many rows it changed. */
  exec(sql: string, params: readonly SqlValue[], options?: SqlRunOptions): Promise<number>
  close(): Promise<void>
}

/** Turns a driver's value into JSON: Buffers to base64, Dates to ISO strings, bigints to strings. */
export function jsonValue(value: unknown): unknown {
  if (Buffer.isBuffer(value)) return value.toString('base64')
  if (value instanceof Date) return value.toISOString()
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString()
  return value
}

/**
 * The row with every value made JSON-safe, in place: a driver hands out a new object per row, and
 * most values (strings, numbers, null) are JSON already.
 */
export function jsonRow(row: Record<string, unknown>): Record<string, unknown> {
  for (const key of Object.keys(row)) {
    const value = row[key]
    if (typeof value === 'object' || typeof value === 'bigint') row[key] = jsonValue(value)
  }
  return row
}
