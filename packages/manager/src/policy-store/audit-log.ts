import type { SqlDatabase } from '../backends/sql-database.js'
import { migrateHostTables } from './policy-store.js'

/** One refused host call, as the audit log keeps it. */
export interface AuditEntry {
  /** Epoch milliseconds. */
  at: number
  plugin: string
  method: string
  /** The refusal's code: `permission_denied`, `rate_limited`, `invalid_argument`, … */
  code: string
  message: string
  /** The plugin call that caused the host call. */
  token?: string
  /** The `plugin.call` chain that led to the caller, outermost first. */
  chain?: string[]
  /** What was asked, in short (the table, the host, the key): never a secret value. */
  detail?: string
}

/** Filters of {@link AuditLog.list}. */
export interface AuditQuery {
  plugin?: string
  method?: string
  code?: string
  /** Newest first; default 100, at most 1000. */
  limit?: number
}

/** The queryable record of refused host calls. */
export interface AuditLog {
  record(entry: AuditEntry): Promise<void>
  /** Newest first. */
  list(query?: AuditQuery): Promise<AuditEntry[]>
}

/**
 * The audit log on the host's SQL database, table `corral_audit`.
 *
 * @example
 * const audit = createSqlAuditLog(backends.database)
 * await audit.list({ plugin: 'stats', code: 'permission_denied' })
 */
export function createSqlAuditLog(database: SqlDatabase): AuditLog {
  return {
    async record(entry) {
      await migrateHostTables(database)
      await database.exec(
        'INSERT INTO corral_audit (at, plugin, method, code, message, token, chain, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)',
        [
          entry.at,
          entry.plugin,
          entry.method,
          entry.code,
          entry.message,
          entry.token ?? null,
          entry.chain === undefined ? null : JSON.stringify(entry.chain),
          entry.detail ?? null,
        ],
      )
    },
    async list(query = {}) {
      await migrateHostTables(database)
      const where: string[] = []
      const params: string[] = []
      for (const key of ['plugin', 'method', 'code'] as const) {
        const value = query[key]
        if (value !== undefined) {
          params.push(value)
          where.push(`${key} = $${params.length}`)
        }
      }
      const limit = Math.min(Math.max(1, Math.floor(query.limit ?? 100)), 1000)
      const rows = await database.query(
        `SELECT at, plugin, method, code, message, token, chain, detail FROM corral_audit${
          where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''
        } ORDER BY id DESC LIMIT ${limit}`,
        params,
      )
      return rows.map((row) => {
        const entry: AuditEntry = {
          at: Number(row.at),
          plugin: String(row.plugin),
          method: String(row.method),
          code: String(row.code),
          message: String(row.message),
        }
        if (row.token !== null) entry.token = String(row.token)
        if (row.chain !== null) entry.chain = JSON.parse(String(row.chain)) as string[]
        if (row.detail !== null) entry.detail = String(row.detail)
        return entry
      })
    },
  }
}
