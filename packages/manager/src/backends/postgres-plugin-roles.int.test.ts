import type { PluginError } from '@corral/types'
import pg from 'pg'
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

  it('names the object it refuses, and what to ask for', async () => {
    await expect(asPlugin('SELECT * FROM users')).rejects.toMatchObject({
      code: 'permission_denied',
      message: expect.stringMatching(/permission denied for table users: no db grant .*ask for db read/),
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
    await db.exec('CREATE TABLE stats_counted (id SERIAL PRIMARY KEY, v TEXT)', [])
    expect(await run("INSERT INTO stats_counted (v) VALUES ('a') RETURNING id")).toEqual([{ id: 1 }])
    await run('DROP INDEX stats_visits_hits')
    await run('TRUNCATE stats_visits, stats_log')
    expect(await run('SELECT count(*) AS n FROM stats_visits')).toEqual([{ n: 0 }])
    expect(await run('SELECT v FROM shared_theme')).toEqual([{ v: 'dark' }])
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

  it('re-grants a view the host redefines to read a secret table', async () => {
    await db.exec('CREATE VIEW shared_motd AS SELECT v FROM shared_config', [])
    expect(await asPlugin('SELECT v FROM shared_motd')).toEqual([{ v: 'dark' }])
    await db.exec('CREATE OR REPLACE VIEW shared_motd AS SELECT v FROM secrets', [])
    await expect(asPlugin('SELECT v FROM shared_motd')).rejects.toMatchObject({ code: 'permission_denied' })
  })

  it("refuses to run a plugin's SQL while a function that runs as its owner is callable by plugins", async () => {
    await db.exec(
      "CREATE FUNCTION public.user_passwords() RETURNS TEXT SECURITY DEFINER LANGUAGE sql AS 'SELECT string_agg(password, '','') FROM public.users'",
      [],
    )
    const call = 'SELECT user_passwords() AS p'
    try {
      await expect(asPlugin(call)).rejects.toMatchObject({
        code: 'unavailable',
        message: expect.stringContaining('REVOKE EXECUTE ON FUNCTION public.user_passwords() FROM PUBLIC'),
      })
    } finally {
      await db.exec('REVOKE EXECUTE ON FUNCTION public.user_passwords() FROM PUBLIC', [])
    }
    await expect(asPlugin(call)).rejects.toMatchObject({ code: 'permission_denied' })
    expect(await asPlugin('SELECT v FROM shared_config')).toEqual([{ v: 'dark' }])
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

  it('does not let a statement count that started under a grant re-synced since its check', async () => {
    await asPlugin('CREATE TABLE stats_slowpoke (v TEXT)')
    await asPlugin("INSERT INTO stats_slowpoke VALUES ('x')")
    const locker = new pg.Client({ connectionString: url })
    await locker.connect()
    try {
      // The host holds the plugin's table: the statement stops there, after its grant was checked
      // and before the server checks its privileges on the other table.
      await locker.query('BEGIN; LOCK TABLE plugin_stats.stats_slowpoke IN ACCESS EXCLUSIVE MODE')
      const sql = 'SELECT s.v, u.password FROM stats_slowpoke s, users u'
      const blocked = outcomeOf(asPlugin(sql))
      const waiting =
        "SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query = $1"
      while ((await db.query(waiting, [sql]))[0]?.n !== 1) await new Promise((r) => setTimeout(r, 20))
      // Meanwhile a call holding a wider grant (admitted before the policy narrowed) re-grants.
      expect(await asPlugin('SELECT count(*) AS n FROM users', { ...leakPrincipal, read: ['*'] })).toEqual([
        { n: 1 },
      ])
      await locker.query('COMMIT')
      const outcome = await blocked
      expect(JSON.stringify(outcome)).not.toContain(secretMarker)
      expect(outcome).toMatchObject({ code: 'unavailable' })
    } finally {
      await locker.end()
    }
  })

  it('keeps nothing of a statement on the connection: temporary tables, settings, advisory locks', async () => {
    await asPlugin('CREATE TEMP TABLE stats_scratch (v TEXT)')
    await asPlugin('SET search_path = public')
    await asPlugin('SELECT pg_advisory_lock(7) AS l')
    // Each of the plugin's connections in turn: whichever the pool hands out, none kept a thing.
    for (let i = 0; i < 3; i++) {
      await expect(asPlugin('SELECT * FROM stats_scratch')).rejects.toMatchObject({
        code: 'invalid_argument',
      })
    }
    await asPlugin('CREATE TABLE stats_placed (v TEXT)')
    expect(
      await db.query(
        "SELECT n.nspname AS schema FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = 'stats_placed'",
        [],
      ),
    ).toEqual([{ schema: 'plugin_stats' }])
    expect(await db.query("SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory'", [])).toEqual([
      { n: 0 },
    ])
  })

  it('cannot lift its own statement timeout', async () => {
    await expect(
      asPlugin(
        'DO $$ BEGIN SET LOCAL statement_timeout = 0; PERFORM pg_sleep(60); END $$',
        leakPrincipal,
        [],
        {
          timeoutMs: 200,
        },
      ),
    ).rejects.toMatchObject({ code: 'deadline_exceeded' })
  })

  it("does not take over a schema of the plugin's schema name that the host made", async () => {
    await db.exec('CREATE SCHEMA plugin_squatted', [])
    await db.exec('CREATE TABLE plugin_squatted.host_data (v TEXT)', [])
    const squatter = { plugin: 'squatted', read: [], write: [] }
    await expect(asPlugin('CREATE TABLE mine (v TEXT)', squatter)).rejects.toMatchObject({
      code: 'unavailable',
    })
    expect(await db.query("SELECT count(*) AS n FROM pg_class WHERE relname = 'mine'", [])).toEqual([
      { n: 0 },
    ])
  })

  it('refuses a principal whose name is not a plugin name', async () => {
    await expect(
      asPlugin('SELECT 1', { plugin: 'x"; DROP TABLE users; --', read: ['*'], write: ['*'] }),
    ).rejects.toMatchObject({ code: 'invalid_argument' })
  })

  describe('a differential fuzz run', () => {
    /** Where a random statement reads: the text column it selects, and whether the grant covers it. */
    const sources = [
      ['stats_daily', 'day', false],
      ['shared_config', 'v', false],
      ['shared_parent', 'v', false],
      ['shared_events', 'v', false],
      ['shared_theme', 'v', false],
      ['shared_user_names', 'name', true],
      ['users', 'password', true],
      ['secrets', 'v', true],
      ['hidden_child', 'note', true],
      ['secret_events', 'v', true],
      ['secret_events_a', 'v', true],
      ['hidden_events_a', 'v', true],
      ['shared_stuff.secrets', 'v', true],
      ['corral_policies', 'policy', true],
    ] as const
    /** CTE names, some spelled like the tables, differently quoted. */
    const cteNames = ['x', 'secrets', 'users', '"SECRETS"', '"Users"', 'shared_config']

    /** A seeded generator (mulberry32): every run tries the same statements. */
    function random(seed: number): () => number {
      let a = seed
      return () => {
        a = (a + 0x6d2b79f5) | 0
        let t = Math.imul(a ^ (a >>> 15), 1 | a)
        t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296
      }
    }

    /** A random SELECT of one text column `c`, and whether it reads anything outside the grant. */
    function select(r: () => number, depth: number): { sql: string; secret: boolean } {
      const pick = <T>(items: readonly T[]) => items[Math.floor(r() * items.length)] as T
      const kind = depth <= 0 ? 0 : Math.floor(r() * 9)
      if (kind === 0) {
        const [name, column, secret] = pick(sources)
        return { sql: `SELECT ${column}::text AS c FROM ${name}`, secret }
      }
      const a = select(r, depth - 1)
      const b = select(r, depth - 1)
      const both = a.secret || b.secret
      switch (kind) {
        case 1: {
          const name = pick(cteNames)
          return { sql: `WITH ${name} AS (${a.sql}) SELECT c FROM ${name}`, secret: a.secret }
        }
        case 2:
          return { sql: `(${a.sql}) UNION ALL (${b.sql})`, secret: both }
        case 3:
          return { sql: `SELECT s.c FROM (${a.sql}) AS s WHERE EXISTS (${b.sql})`, secret: both }
        case 4:
          return { sql: `SELECT (SELECT max(q.c) FROM (${a.sql}) AS q) AS c`, secret: a.secret }
        case 5:
          return { sql: `SELECT s.c FROM (${a.sql}) AS s WHERE s.c NOT IN (${b.sql})`, secret: both }
        case 6:
          return { sql: `SELECT t.c FROM (${a.sql}) AS s CROSS JOIN LATERAL (${b.sql}) AS t`, secret: both }
        case 7:
          return { sql: `SELECT unnest(ARRAY(${a.sql})) AS c`, secret: a.secret }
        default:
          return { sql: `(${a.sql}) EXCEPT (${b.sql})`, secret: both }
      }
    }

    /** The statement as run: plain, counted, or as SQL text a function runs (always executed). */
    function statement(r: () => number): { sql: string; secret: boolean } {
      const inner = select(r, 1 + Math.floor(r() * 3))
      const wrap = Math.floor(r() * 3)
      if (wrap === 0) return inner
      if (wrap === 1)
        return { sql: `SELECT count(*)::text AS c FROM (${inner.sql}) AS z`, secret: inner.secret }
      const text = `'${inner.sql.replaceAll("'", "''")}'`
      return {
        sql: `SELECT length(query_to_xml(${text}, true, false, '')::text)::text AS c`,
        secret: inner.secret,
      }
    }

    /** Rows in a stable order, or the refusal's code: what the plugin and the host must agree on. */
    function comparable(outcome: Outcome): unknown {
      if ('code' in outcome) return outcome.code
      return outcome.rows.map((row) => JSON.stringify(row)).sort()
    }

    /** Changes every secret value and adds secret rows: a statement's answer must not change with them. */
    const changeSecrets = [
      "UPDATE users SET password = 'other-' || name",
      "INSERT INTO users VALUES ('extra', 'other')",
      "UPDATE secrets SET v = 'other'",
      "INSERT INTO secrets VALUES ('other too')",
      "UPDATE secret_events SET v = 'other'",
      "INSERT INTO secret_events VALUES ('a', 'other too')",
      "UPDATE shared_stuff.secrets SET v = 'other'",
      "UPDATE corral_policies SET policy = 'other'",
      "INSERT INTO corral_policies VALUES ('extra', 'other')",
      // The child's own column only: its inherited rows are visible through the granted parent.
      "UPDATE hidden_child SET note = 'other'",
    ].join('; ')

    let oracle: pg.Client
    beforeAll(async () => {
      oracle = new pg.Client({ connectionString: url })
      await oracle.connect()
    })
    afterAll(async () => {
      await oracle?.end()
    })

    /** What the host gets from `sql` with every secret changed, in a transaction rolled back after. */
    async function withSecretsChanged(sql: string): Promise<unknown> {
      await oracle.query('BEGIN')
      try {
        await oracle.query(changeSecrets)
        return comparable({ rows: (await oracle.query(sql)).rows })
      } catch (error) {
        return (error as { code?: string }).code
      } finally {
        await oracle.query('ROLLBACK')
      }
    }

    it('finds no statement whose answer depends on what the grant does not cover (300 random statements)', async () => {
      const r = random(20261129)
      const escaped: string[] = []
      let refused = 0
      for (let i = 0; i < 300; i++) {
        const { sql, secret } = statement(r)
        const plugin = await outcomeOf(asPlugin(sql))
        if (JSON.stringify(plugin).includes(secretMarker)) escaped.push(`secret shown: ${sql}`)
        // The oracle: what the host itself, with every right, gets from the same statement.
        const answer = JSON.stringify(comparable(plugin))
        const host = JSON.stringify(comparable(await outcomeOf(db.query(sql, []))))
        if (!secret) {
          if (answer !== host) escaped.push(`answered unlike the host: ${sql}`)
        } else if ('code' in plugin && plugin.code === 'permission_denied') {
          refused++
        } else if (answer !== host || answer !== JSON.stringify(await withSecretsChanged(sql))) {
          // Answered although it names a secret table: only right where the database never read it
          // (a subquery whose output nothing uses is planned away), so the answer cannot depend on it.
          escaped.push(`answered from secret rows: ${sql}`)
        }
      }
      expect(escaped).toEqual([])
      // Both halves were exercised: statements refused, and statements answered like the host.
      expect(refused).toBeGreaterThan(75)
      expect(refused).toBeLessThan(300)
    })
  })

  describe("a plugin's own tables, as on SQLite", () => {
    const readOnly: SqlPrincipal = { plugin: 'owner', read: ['shared_*'], write: [] }
    const writer: SqlPrincipal = { plugin: 'owner', read: ['shared_*'], write: ['owner_*'] }
    const none: SqlPrincipal = { plugin: 'owner', read: [], write: [] }

    beforeAll(async () => {
      await asPlugin('CREATE TABLE notes (v TEXT)', writer)
      await asPlugin("INSERT INTO notes VALUES ('mine')", writer)
    })

    it('are written with a write grant of any scope only', async () => {
      for (const sql of ["INSERT INTO notes VALUES ('more')", 'TRUNCATE notes', 'DROP TABLE notes']) {
        await expect(asPlugin(sql, readOnly)).rejects.toMatchObject({
          code: 'permission_denied',
          message: expect.stringContaining("this plugin's db grant is read-only"),
        })
      }
      expect(await asPlugin('SELECT v FROM notes', writer)).toEqual([{ v: 'mine' }])
    })

    it('are read with a grant of any scope', async () => {
      expect(await asPlugin('SELECT v FROM notes', readOnly)).toEqual([{ v: 'mine' }])
      await expect(asPlugin('SELECT v FROM plugin_owner.notes', none)).rejects.toMatchObject({
        code: 'permission_denied',
      })
    })

    it('are named unqualified; public.t names the application table', async () => {
      await asPlugin('CREATE TABLE shared_config (k TEXT, v TEXT)', writer)
      await asPlugin("INSERT INTO shared_config VALUES ('theme', 'own')", writer)
      expect(await asPlugin('SELECT v FROM shared_config', readOnly)).toEqual([{ v: 'own' }])
      expect(await asPlugin('SELECT v FROM public.shared_config', readOnly)).toEqual([{ v: 'dark' }])
    })
  })

  it('bounds a statement in time', async () => {
    await asPlugin("CREATE FUNCTION stats_slow() RETURNS INT LANGUAGE sql AS 'SELECT 1 FROM pg_sleep(60)'")
    await expect(
      asPlugin('SELECT stats_slow() AS n', leakPrincipal, [], { timeoutMs: 200 }),
    ).rejects.toMatchObject({ code: 'deadline_exceeded' })
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
