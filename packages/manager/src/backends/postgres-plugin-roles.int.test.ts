import type { PluginError } from '@corral/types'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freshPostgresDatabase } from '../testing/backend-sets.js'
import {
  leakPrincipal,
  leakSchema,
  postgresLeakCases,
  secretMarker,
  ungrantedObjects,
} from '../testing/postgres-leak-cases.js'
import { createPostgresDatabase } from './postgres-database.js'
import type { SqlDatabase, SqlPrincipal, SqlRunOptions, SqlValue } from './sql-database.js'

/** A call's outcome as plain data: its rows, or its error's code and message. */
type Outcome = { rows: Record<string, unknown>[] } | { code: string; message: string }

function outcomeOf(promise: Promise<Record<string, unknown>[]>): Promise<Outcome> {
  return promise.then(
    (rows) => ({ rows }),
    (error: PluginError) => ({ code: error.code, message: error.message }),
  )
}

describe("PostgreSQL runs a plugin's SQL as the plugin's own role", () => {
  let url: string
  let db: SqlDatabase
  let before: unknown[]

  /** Every ungranted object's rows and definition, read by the host. */
  async function ungranted(): Promise<unknown[]> {
    return Promise.all(ungrantedObjects.map((sql) => db.query(sql, [])))
  }

  function asPlugin(
    sql: string,
    principal: SqlPrincipal = leakPrincipal,
    params: SqlValue[] = [],
    options: SqlRunOptions = {},
  ): Promise<Record<string, unknown>[]> {
    return db.query(sql, params, { principal, timeoutMs: 10_000, ...options })
  }

  beforeAll(async () => {
    url = await freshPostgresDatabase('plugin_roles')
    db = await createPostgresDatabase({ url })
    for (const sql of leakSchema) await db.exec(sql, [])
    before = await ungranted()
  })
  afterAll(async () => {
    await db?.close()
  })

  it.each(postgresLeakCases)('$leak: $name', async (leak) => {
    for (const sql of leak.prepare ?? []) await asPlugin(sql, leak.principal)
    const outcome = await outcomeOf(asPlugin(leak.sql, leak.principal))
    expect(JSON.stringify(outcome)).not.toContain(secretMarker)
    if ('code' in leak.expect) expect(outcome).toMatchObject({ code: leak.expect.code })
    else expect(outcome).toEqual({ rows: leak.expect.rows })
  })

  it('left every ungranted object as it was (rows and definitions)', async () => {
    expect(await ungranted()).toEqual(before)
  })

  it('names the object it refuses', async () => {
    await expect(asPlugin('SELECT * FROM users')).rejects.toMatchObject({
      code: 'permission_denied',
      message: expect.stringContaining('users'),
    })
  })

  it("creates the plugin's tables in its own schema, owned by its role", async () => {
    await asPlugin('CREATE TABLE stats_notes (id SERIAL PRIMARY KEY, note TEXT)')
    const [where] = await db.query(
      "SELECT n.nspname AS schema, c.relowner::regrole::text AS owner FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = 'stats_notes'",
      [],
    )
    expect(where?.schema).toBe('plugin_stats')
    expect(where?.owner).toMatch(/^corral_[0-9a-f]{8}_stats$/)
    expect(await asPlugin("INSERT INTO stats_notes (note) VALUES ('a') RETURNING id")).toEqual([{ id: 1 }])
  })

  it('runs the ordinary SQL a plugin needs', async () => {
    const run = (sql: string, params: SqlValue[] = []) => asPlugin(sql, leakPrincipal, params)
    await run(
      'CREATE TABLE stats_Visits (Day TEXT PRIMARY KEY, Hits INTEGER DEFAULT 0, At TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP)',
    )
    await run('CREATE INDEX stats_visits_hits ON stats_visits (hits)')
    await run("INSERT INTO stats_visits (day) VALUES ('d0')")
    await run("INSERT INTO stats_visits (day, hits) VALUES ('d1', 1), ('d2', 2)")
    await run(
      'INSERT INTO stats_visits (day, hits) VALUES ($1, 5) ON CONFLICT (day) DO UPDATE SET hits = stats_visits.hits + excluded.hits',
      ['d1'],
    )
    await run(
      'UPDATE stats_visits SET hits = stats_visits.hits + d.hits FROM stats_daily d WHERE d.day = $1 AND stats_visits.day = $2',
      ['2026-11-21', 'd2'],
    )
    await run(
      'DELETE FROM stats_visits USING stats_daily d WHERE stats_visits.hits < d.hits AND d.day = $1',
      ['2026-11-20'],
    )
    await run(
      'CREATE TABLE stats_log (id INTEGER GENERATED ALWAYS AS IDENTITY, at TIMESTAMPTZ DEFAULT now())',
    )
    await run('INSERT INTO stats_log DEFAULT VALUES')
    expect(
      await run(
        'SELECT Day, Hits, count(*) FILTER (WHERE hits > 1) OVER () AS big FROM stats_visits ORDER BY hits DESC NULLS LAST LIMIT $1',
        [2],
      ),
    ).toEqual([
      { day: 'd2', hits: 7, big: 2 },
      { day: 'd1', hits: 6, big: 2 },
    ])
    expect(
      await run(
        'SELECT day FROM stats_visits EXCEPT SELECT day FROM stats_daily INTERSECT SELECT day FROM stats_daily ORDER BY day FETCH FIRST 1 ROWS ONLY',
      ),
    ).toEqual([{ day: 'd1' }])
    await run('INSERT INTO stats_daily (day, hits) VALUES ($1, $2)', ['2026-11-22', 1])
    await run('DROP INDEX stats_visits_hits')
    await run('TRUNCATE stats_visits, stats_log')
    expect(await run('SELECT count(*) AS n FROM stats_visits')).toEqual([{ n: 0 }])
    expect(await run('SELECT name FROM shared_user_names')).toEqual([{ name: 'root' }])
  })

  it('takes a narrowed grant into account on the very next statement', async () => {
    expect(await asPlugin('SELECT v FROM shared_config')).toEqual([{ v: 'dark' }])
    const narrowed = { ...leakPrincipal, read: ['stats_*'] }
    await expect(asPlugin('SELECT v FROM shared_config', narrowed)).rejects.toMatchObject({
      code: 'permission_denied',
    })
    expect(await asPlugin('SELECT v FROM shared_config')).toEqual([{ v: 'dark' }])
  })

  it('grants a table the host creates, and none it renames out of the grant', async () => {
    await db.exec('CREATE TABLE shared_news (v TEXT)', [])
    await db.exec("INSERT INTO shared_news VALUES ('news')", [])
    expect(await asPlugin('SELECT v FROM shared_news')).toEqual([{ v: 'news' }])
    // Privileges follow the table, not its name: the host's rename must take them away.
    await db.exec('ALTER TABLE shared_news RENAME TO hidden_news', [])
    await expect(asPlugin('SELECT v FROM hidden_news')).rejects.toMatchObject({ code: 'permission_denied' })
  })

  it('does not trust a grant another host replica synced for a wider policy', async () => {
    const replica = await createPostgresDatabase({ url })
    try {
      const wide = { ...leakPrincipal, read: ['*'] }
      expect(await replica.query('SELECT name FROM users', [], { principal: wide })).toEqual([
        { name: 'root' },
      ])
      await expect(asPlugin('SELECT name FROM users')).rejects.toMatchObject({ code: 'permission_denied' })
    } finally {
      await replica.close()
    }
  })

  it('refuses a principal whose name is not a plugin name', async () => {
    await expect(
      asPlugin('SELECT 1', { plugin: 'x"; DROP TABLE users; --', read: ['*'], write: ['*'] }),
    ).rejects.toMatchObject({ code: 'invalid_argument' })
  })

  describe('the plan check', () => {
    beforeAll(async () => {
      // Immutable: PostgreSQL runs them while planning, to fold their result into the plan.
      await asPlugin(
        "CREATE FUNCTION stats_slow() RETURNS INT IMMUTABLE LANGUAGE sql AS 'SELECT 1 FROM pg_sleep(60)'",
      )
      await asPlugin(
        "CREATE FUNCTION stats_steal() RETURNS TEXT IMMUTABLE LANGUAGE sql AS 'SELECT string_agg(v, '','') FROM public.secrets'",
      )
    })

    it('is bounded in time, like the statement', async () => {
      await expect(
        db.opened?.('SELECT plugin_stats.stats_slow() AS n', [], {
          principal: leakPrincipal,
          timeoutMs: 200,
        }),
      ).rejects.toMatchObject({ code: 'deadline_exceeded' })
      await expect(
        asPlugin('SELECT stats_slow() AS n', leakPrincipal, [], { timeoutMs: 200 }),
      ).rejects.toMatchObject({
        code: 'deadline_exceeded',
      })
    })

    it("plans as the plugin: a function run while planning has the plugin's rights", async () => {
      await expect(
        db.opened?.('SELECT plugin_stats.stats_steal() AS s', [], { principal: leakPrincipal }),
      ).rejects.toMatchObject({ code: 'permission_denied' })
    })

    it('plans afresh each time: objects renamed since are seen', async () => {
      await db.exec('CREATE TABLE shared_plan (v TEXT)', [])
      const sql = 'SELECT v FROM shared_plan'
      expect(await db.opened?.(sql, [])).toEqual({ reads: ['shared_plan'], writes: [] })
      await db.exec('ALTER TABLE shared_plan RENAME TO hidden_plan', [])
      await db.exec('CREATE VIEW shared_plan AS SELECT v FROM secrets', [])
      expect(await db.opened?.(sql, [])).toEqual({ reads: ['secrets'], writes: [] })
    })
  })

  describe('one plugin flooding its connections', () => {
    it("fails its own calls at their deadline, not another plugin's nor the host's", async () => {
      const slow = Array.from({ length: 3 }, () =>
        outcomeOf(asPlugin('SELECT pg_sleep(30) AS s', leakPrincipal, [], { timeoutMs: 8000 })),
      )
      let settled = false
      const flood = Promise.all(slow).finally(() => {
        settled = true
      })
      const other = { plugin: 'other', read: ['shared_*'], write: [] }
      expect(await asPlugin('SELECT v FROM shared_config', other)).toEqual([{ v: 'dark' }])
      expect(await db.query('SELECT count(*) AS n FROM users', [])).toEqual([{ n: 1 }])
      expect(settled).toBe(false)
      const outcomes = await flood
      // Two ran and were cancelled by the server; the third waited for a connection until its deadline.
      expect(outcomes.map((o) => ('code' in o ? o.code : 'rows'))).toEqual(Array(3).fill('deadline_exceeded'))
    })
  })
})
