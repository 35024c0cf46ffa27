import type { PluginState } from '@corral/types'
import type { SqlDatabase } from '../backends/sql-database.js'
import type { StateTransition } from './manager-api.js'

/** Where each plugin's state history outlives the host's process: table `corral_plugin_states`. */
export interface StateHistoryStore {
  /** Appends a transition, then keeps only the plugin's `keep` newest ones. */
  append(plugin: string, transition: StateTransition): Promise<void>
  /** The plugin's `limit` newest transitions, oldest first. */
  list(plugin: string, limit: number): Promise<StateTransition[]>
}

const migrations = new WeakMap<SqlDatabase, Promise<void>>()

function migrate(database: SqlDatabase): Promise<void> {
  let done = migrations.get(database)
  if (done === undefined) {
    const id = database.dialect === 'sqlite' ? 'INTEGER PRIMARY KEY AUTOINCREMENT' : 'BIGSERIAL PRIMARY KEY'
    done = (async () => {
      await database.exec(
        `CREATE TABLE IF NOT EXISTS corral_plugin_states (id ${id}, plugin TEXT NOT NULL, at BIGINT NOT NULL, from_state TEXT NOT NULL, to_state TEXT NOT NULL, reason TEXT NOT NULL)`,
        [],
      )
      await database.exec(
        'CREATE INDEX IF NOT EXISTS corral_plugin_states_plugin ON corral_plugin_states (plugin, id)',
        [],
      )
    })()
    done.catch(() => migrations.delete(database))
    migrations.set(database, done)
  }
  return done
}

/**
 * The state history on the host's SQL database (SQLite or PostgreSQL, one DDL for both).
 *
 * @example
 * const store = createSqlStateHistoryStore(backends.database, { keep: 50 })
 * await store.append('stats', { at: Date.now(), from: 'loading', to: 'running', reason: 'loaded' })
 */
export function createSqlStateHistoryStore(
  database: SqlDatabase,
  options: { keep: number },
): StateHistoryStore {
  const keep = Math.max(1, Math.floor(options.keep))
  return {
    async append(plugin, transition) {
      await migrate(database)
      await database.exec(
        'INSERT INTO corral_plugin_states (plugin, at, from_state, to_state, reason) VALUES ($1, $2, $3, $4, $5)',
        [plugin, transition.at, transition.from, transition.to, transition.reason],
      )
      await database.exec(
        `DELETE FROM corral_plugin_states WHERE plugin = $1 AND id NOT IN (SELECT id FROM corral_plugin_states WHERE plugin = $1 ORDER BY id DESC LIMIT ${keep})`,
        [plugin],
      )
    },
    async list(plugin, limit) {
      await migrate(database)
      const rows = await database.query(
        `SELECT at, from_state, to_state, reason FROM corral_plugin_states WHERE plugin = $1 ORDER BY id DESC LIMIT ${Math.max(1, Math.floor(limit))}`,
        [plugin],
      )
      return rows.reverse().map((row) => ({
        at: Number(row.at),
        from: String(row.from_state) as PluginState,
        to: String(row.to_state) as PluginState,
        reason: String(row.reason),
      }))
    },
  }
}
