import type { HostApi } from '@corral/plugin-sdk'

/**
 * The plugin's own tables, through `db.exec` and `db.query`. The SQL runs as written on SQLite and
 * PostgreSQL: `$n` placeholders, and counts cast to INTEGER (PostgreSQL's COUNT and SUM are bigint,
 * which its driver returns as text).
 */
const createTables = [
  'CREATE TABLE IF NOT EXISTS stats_events (day TEXT NOT NULL, kind TEXT NOT NULL, recorded_at TEXT NOT NULL)',
  'CREATE TABLE IF NOT EXISTS stats_daily (day TEXT NOT NULL, kind TEXT NOT NULL, total INTEGER NOT NULL, PRIMARY KEY (day, kind))',
]

/** One row of the rollup: how many events of a kind a day had. */
export interface DailyCount {
  day: string
  kind: string
  total: number
}

/** A day's or a kind's total over the rollup. */
export interface Total {
  label: string
  total: number
}

const asTotals = (rows: Record<string, unknown>[]): Total[] =>
  rows.map((r) => ({ label: String(r.label), total: Number(r.total) }))

/** Creates the tables if they are not there yet. */
export async function createEventTables(host: HostApi): Promise<void> {
  for (const sql of createTables) await host.call('db.exec', { sql })
}

/** Records one event; it counts once the next rollup has run. */
export async function recordEvent(
  host: HostApi,
  day: string,
  kind: string,
  recordedAt: string,
): Promise<void> {
  await host.call('db.exec', {
    sql: 'INSERT INTO stats_events (day, kind, recorded_at) VALUES ($1, $2, $3)',
    args: [day, kind, recordedAt],
  })
}

/**
 * Recounts every day and kind from the raw events into `stats_daily`, in one statement: a rollup
 * that runs twice (the job and an administrator at once) writes the same counts, never double ones.
 * Returns how many rows of the rollup it wrote.
 */
export async function rollUp(host: HostApi): Promise<number> {
  // `WHERE true` keeps SQLite from reading ON CONFLICT as a join constraint of the SELECT.
  const { rows_affected } = await host.call('db.exec', {
    sql:
      'INSERT INTO stats_daily (day, kind, total) ' +
      'SELECT day, kind, COUNT(*) FROM stats_events WHERE true GROUP BY day, kind ' +
      'ON CONFLICT (day, kind) DO UPDATE SET total = excluded.total',
  })
  return rows_affected
}

/** The rollup of one day, largest count first. */
export async function countsOfDay(host: HostApi, day: string): Promise<DailyCount[]> {
  const { rows } = await host.call('db.query', {
    sql: 'SELECT day, kind, total FROM stats_daily WHERE day = $1 ORDER BY total DESC, kind',
    args: [day],
  })
  return rows.map((r) => ({ day: String(r.day), kind: String(r.kind), total: Number(r.total) }))
}

/** Totals per day, the latest `limit` days that have any, oldest first. */
export async function totalsByDay(host: HostApi, limit: number): Promise<Total[]> {
  const { rows } = await host.call('db.query', {
    sql:
      'SELECT day AS label, CAST(SUM(total) AS INTEGER) AS total FROM stats_daily ' +
      'GROUP BY day ORDER BY day DESC LIMIT $1',
    args: [limit],
  })
  return asTotals(rows).reverse()
}

/** Totals per kind over every day, largest first. */
export async function totalsByKind(host: HostApi): Promise<Total[]> {
  const { rows } = await host.call('db.query', {
    sql:
      'SELECT kind AS label, CAST(SUM(total) AS INTEGER) AS total FROM stats_daily ' +
      'GROUP BY kind ORDER BY total DESC, kind',
  })
  return asTotals(rows)
}
