import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Backends } from '../backends/create-backends.js'
import {
  backendSetKinds,
  createTestClock,
  openBackendSet,
  prepareBackendSet,
} from '../testing/backend-sets.js'
import { createTestHost, expectRefused, type TestHost } from '../testing/host-fixture.js'

/** Plugin `stats` may read and write its own `stats_*` tables and read `shared_*`. */
const stats = {
  name: 'stats',
  permissions: [
    { type: 'db' as const, access: ['read' as const, 'write' as const], scope: ['stats_*'] },
    { type: 'db' as const, access: ['read' as const], scope: ['shared_*'] },
  ],
}
/** Plugin `wide` may read every table of the application: still not the host's or the catalogs. */
const wide = { name: 'wide', permissions: [{ type: 'db' as const, access: ['read' as const], scope: ['*'] }] }

type Dialect = 'sqlite' | 'postgresql'
type Code = 'permission_denied' | 'invalid_argument'
/** A bypass attempt: the SQL (per dialect where they differ) and the refusal code. */
interface Bypass {
  name: string
  plugin?: string
  method?: 'db.query' | 'db.exec'
  sql: string | Record<Dialect, string>
  code: Code | Record<Dialect, Code>
}

const bypasses: Bypass[] = [
  { name: 'plain read of another table', sql: 'SELECT * FROM users', code: 'permission_denied' },
  {
    name: 'CTE over another table',
    sql: 'WITH t AS (SELECT * FROM users) SELECT * FROM t',
    code: 'permission_denied',
  },
  {
    name: 'CTE named like a granted table, reading another',
    sql: 'WITH stats_daily AS (SELECT name AS day, 0 AS hits FROM users) SELECT * FROM stats_daily',
    code: 'permission_denied',
  },
  {
    name: 'subquery in WHERE',
    sql: 'SELECT * FROM stats_daily WHERE day IN (SELECT name FROM users)',
    code: 'permission_denied',
  },
  {
    name: 'scalar subquery in the select list',
    sql: 'SELECT (SELECT password FROM users LIMIT 1) AS p FROM stats_daily',
    code: 'permission_denied',
  },
  {
    name: 'subquery in FROM',
    sql: 'SELECT * FROM (SELECT * FROM users) AS s',
    code: 'permission_denied',
  },
  {
    name: 'UNION',
    sql: 'SELECT day FROM stats_daily UNION SELECT name FROM users',
    code: 'permission_denied',
  },
  { name: 'JOIN', sql: 'SELECT * FROM stats_daily JOIN users ON 1 = 1', code: 'permission_denied' },
  {
    name: 'EXISTS subquery',
    sql: "SELECT day FROM stats_daily WHERE EXISTS (SELECT 1 FROM users WHERE name = 'root')",
    code: 'permission_denied',
  },
  {
    name: 'a function argument reading another table',
    sql: "SELECT coalesce((SELECT name FROM users LIMIT 1), 'x') AS v",
    code: 'permission_denied',
  },
  {
    name: 'recursive CTE joining another table',
    sql: 'WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r, users WHERE n < 3) SELECT * FROM r',
    code: 'permission_denied',
  },
  { name: 'quoted identifier', sql: 'SELECT * FROM "users"', code: 'permission_denied' },
  { name: 'upper-case name', sql: 'SELECT * FROM USERS', code: 'permission_denied' },
  {
    name: 'schema-qualified name',
    sql: 'SELECT * FROM public.users',
    code: 'permission_denied',
  },
  {
    name: 'FROM ONLY',
    sql: 'SELECT * FROM ONLY users',
    // SQLite reads a table named "only", which no database has.
    code: { sqlite: 'invalid_argument', postgresql: 'permission_denied' },
  },
  {
    name: 'a second statement after a comment',
    sql: 'SELECT * FROM stats_daily /* harmless */; SELECT * FROM users',
    code: 'invalid_argument',
  },
  {
    name: 'a second statement after a line comment',
    sql: 'SELECT * FROM stats_daily --\n; DROP TABLE users',
    code: 'invalid_argument',
  },
  { name: 'two statements', method: 'db.exec', sql: 'SELECT 1; DELETE FROM users', code: 'invalid_argument' },
  {
    name: 'a backslash that ends a string for the database but not for a parser',
    sql: "SELECT 'x\\' AS a, (SELECT password FROM users) AS b, 'y' AS c FROM stats_daily",
    // The database checks what it compiled, however a parser would cut the text: the subquery reads users.
    code: 'permission_denied',
  },
  {
    name: 'a doubled quote inside an identifier',
    sql: 'SELECT * FROM "stats_daily""users"',
    code: 'invalid_argument',
  },
  { name: 'SQL that does not parse', sql: 'SELEC * FROM stats_daily', code: 'invalid_argument' },
  {
    name: 'SQL over the 16 KiB cap (values belong in args)',
    sql: `SELECT * FROM stats_daily WHERE ${Array.from({ length: 1500 }, (_, i) => `day = '${i}'`).join(' OR ')}`,
    code: 'invalid_argument',
  },
  { name: 'DROP of another table', method: 'db.exec', sql: 'DROP TABLE users', code: 'permission_denied' },
  {
    name: "CREATE among the application's tables",
    method: 'db.exec',
    // Unqualified, it would be the plugin's own (its own database or schema).
    sql: 'CREATE TABLE public.evil (a INT)',
    code: 'permission_denied',
  },
  {
    name: 'renaming an application table',
    method: 'db.exec',
    sql: 'ALTER TABLE stats_daily RENAME TO users_copy',
    code: 'permission_denied',
  },
  {
    name: 'CREATE TABLE AS reading another table',
    method: 'db.exec',
    sql: 'CREATE TABLE stats_copy AS SELECT * FROM users',
    code: 'permission_denied',
  },
  {
    // SQLite: refused (it would outlive the statement on the connection). PostgreSQL: it ends with
    // its statement (DISCARD ALL), and is refused where it reads what the grant does not cover.
    name: 'a temporary table',
    method: 'db.exec',
    sql: {
      sqlite: 'CREATE TEMP TABLE stats_scratch (v TEXT)',
      postgresql: 'CREATE TEMP TABLE stats_scratch AS SELECT * FROM users',
    },
    code: 'permission_denied',
  },
  {
    name: 'CREATE VIEW over another table',
    method: 'db.exec',
    sql: {
      sqlite: 'CREATE VIEW stats_v AS SELECT * FROM public.users',
      // A plain view is made (and refused when read, see db-grants.int.test.ts); this one reads now.
      postgresql: 'CREATE MATERIALIZED VIEW stats_v AS SELECT * FROM users',
    },
    // SQLite: a view of the plugin's database cannot name another database at all.
    code: { sqlite: 'invalid_argument', postgresql: 'permission_denied' },
  },
  {
    name: 'write to a read-only grant',
    method: 'db.exec',
    sql: "INSERT INTO shared_config (k, v) VALUES ('a', 'b')",
    code: 'permission_denied',
  },
  {
    name: 'INSERT … SELECT from another table',
    method: 'db.exec',
    sql: 'INSERT INTO stats_daily (day, hits) SELECT name, 1 FROM users',
    code: 'permission_denied',
  },
  {
    name: 'UPDATE with a subquery of another table',
    method: 'db.exec',
    sql: 'UPDATE stats_daily SET hits = (SELECT count(*) FROM users)',
    code: 'permission_denied',
  },
  {
    name: 'DELETE from another table',
    method: 'db.exec',
    sql: 'DELETE FROM users',
    code: 'permission_denied',
  },
  {
    name: 'file-reading function',
    sql: {
      sqlite: "SELECT readfile('/etc/passwd') AS f",
      postgresql: "SELECT pg_read_file('/etc/passwd') AS f",
    },
    // SQLite's library has no such function.
    code: { sqlite: 'invalid_argument', postgresql: 'permission_denied' },
  },
  {
    name: 'extension loading',
    method: 'db.exec',
    sql: { sqlite: "SELECT load_extension('/tmp/evil.so')", postgresql: "LOAD '/tmp/evil.so'" },
    code: 'permission_denied',
  },
  {
    name: 'SQL given as text to a function',
    sql: "SELECT query_to_xml('SELECT * FROM users', true, true, '') AS x",
    code: { sqlite: 'invalid_argument', postgresql: 'permission_denied' },
  },
  {
    name: 'session and database switching statements',
    method: 'db.exec',
    sql: { sqlite: "ATTACH DATABASE '/tmp/x.db' AS x", postgresql: 'SET SESSION AUTHORIZATION postgres' },
    code: 'permission_denied',
  },
  {
    name: 'SELECT INTO a new table, from another table',
    method: 'db.exec',
    sql: 'SELECT * INTO stats_copy FROM users',
    // SQLite has no SELECT INTO, and its parser says so.
    code: { sqlite: 'invalid_argument', postgresql: 'permission_denied' },
  },
  {
    name: "the host's own tables, under a * grant",
    plugin: 'wide',
    sql: 'SELECT * FROM corral_policies',
    code: 'permission_denied',
  },
  {
    name: 'the catalog, under a * grant',
    plugin: 'wide',
    // PostgreSQL's catalogs show every role the names (see the README); not the roles' passwords.
    sql: { sqlite: 'SELECT * FROM public.sqlite_master', postgresql: 'SELECT * FROM pg_authid' },
    code: 'permission_denied',
  },
  {
    name: "the catalog's statistics of tables, under a * grant",
    plugin: 'wide',
    sql: {
      sqlite: 'SELECT * FROM public.sqlite_schema',
      postgresql: 'SELECT * FROM pg_statistic',
    },
    code: 'permission_denied',
  },
]

describe.each(backendSetKinds)('db.query / db.exec on the %s backends', (kind) => {
  let backends: Backends
  let host: TestHost
  let dialect: Dialect

  beforeAll(async () => {
    const config = await prepareBackendSet(kind, 'db')
    backends = await openBackendSet(config, createTestClock().now)
    dialect = backends.database.dialect
    // The application's tables, created by the host (not through the sandbox).
    for (const sql of [
      'CREATE TABLE users (name TEXT PRIMARY KEY, password TEXT)',
      "INSERT INTO users VALUES ('root', 'hunter2')",
      'CREATE TABLE stats_daily (day TEXT PRIMARY KEY, hits INTEGER)',
      "INSERT INTO stats_daily VALUES ('2026-11-20', 3), ('2026-11-21', 5)",
      'CREATE TABLE stats_hourly (day TEXT, hour INTEGER, hits INTEGER)',
      "INSERT INTO stats_hourly VALUES ('2026-11-21', 9, 2), ('2026-11-21', 10, 3)",
      'CREATE TABLE shared_config (k TEXT, v TEXT)',
      "INSERT INTO shared_config VALUES ('theme', 'dark')",
    ]) {
      await backends.database.exec(sql, [])
    }
    host = await createTestHost(backends, [stats, wide])
  })
  afterAll(async () => {
    await backends?.close()
  })

  it.each(bypasses)('refuses $name', async (bypass) => {
    const sql = typeof bypass.sql === 'string' ? bypass.sql : bypass.sql[dialect]
    const code = typeof bypass.code === 'string' ? bypass.code : bypass.code[dialect]
    await expectRefused(host.call(bypass.plugin ?? 'stats', bypass.method ?? 'db.query', { sql }), code)
  })

  it('left every table as it was after the refusals', async () => {
    expect(await backends.database.query('SELECT name, password FROM users', [])).toEqual([
      { name: 'root', password: 'hunter2' },
    ])
    expect(await backends.database.query('SELECT count(*) AS n FROM stats_daily', [])).toEqual([{ n: 2 }])
  })

  it('runs a granted read with bound parameters', async () => {
    const result = await host.call('stats', 'db.query', {
      sql: 'SELECT day, hits FROM stats_daily WHERE day = $1',
      args: ['2026-11-21'],
    })
    expect(result).toEqual({ rows: [{ day: '2026-11-21', hits: 5 }] })
  })

  it('binds values as data, never as SQL', async () => {
    const result = await host.call('stats', 'db.query', {
      sql: 'SELECT count(*) AS n FROM stats_daily WHERE day = $1',
      args: ["x' OR '1'='1"],
    })
    expect(result).toEqual({ rows: [{ n: 0 }] })
  })

  it.each([
    [
      'a CTE over a granted table',
      'WITH t AS (SELECT * FROM stats_daily) SELECT count(*) AS n FROM t',
      [{ n: 2 }],
    ],
    [
      'a join of granted tables',
      'SELECT d.day, sum(h.hits) AS h FROM stats_daily d JOIN stats_hourly h ON h.day = d.day GROUP BY d.day',
      [{ day: '2026-11-21', h: 5 }],
    ],
    [
      'a subquery of a granted table',
      'SELECT day FROM stats_daily WHERE hits = (SELECT max(hits) FROM stats_daily)',
      [{ day: '2026-11-21' }],
    ],
    [
      'a recursive CTE',
      'WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT n FROM r',
      [{ n: 1 }, { n: 2 }, { n: 3 }],
    ],
    ['a quoted granted name', 'SELECT hits FROM "stats_daily" WHERE day = \'2026-11-20\'', [{ hits: 3 }]],
    ['a read-only grant', 'SELECT v FROM shared_config -- a comment', [{ v: 'dark' }]],
  ])('allows %s', async (_name, sql, rows) => {
    expect(await host.call('stats', 'db.query', { sql })).toEqual({ rows })
  })

  it('writes to granted tables and reports rows affected', async () => {
    expect(
      await host.call('stats', 'db.exec', {
        sql: 'INSERT INTO stats_hourly (day, hour, hits) VALUES ($1, $2, $3)',
        args: ['2026-11-22', 1, 7],
      }),
    ).toEqual({ rows_affected: 1 })
    expect(
      await host.call('stats', 'db.exec', {
        sql: 'UPDATE stats_hourly SET hits = hits + 1 WHERE day = $1',
        args: ['2026-11-21'],
      }),
    ).toEqual({ rows_affected: 2 })
    expect(
      await host.call('stats', 'db.exec', {
        sql: 'DELETE FROM stats_hourly WHERE day = $1',
        args: ['2026-11-22'],
      }),
    ).toEqual({ rows_affected: 1 })
  })

  it('lets a plugin create, alter, index and drop its own tables', async () => {
    for (const sql of [
      'CREATE TABLE stats_tmp (id INTEGER PRIMARY KEY, label TEXT)',
      // What a plugin's init runs at every start: a no-op once the table exists.
      'CREATE TABLE IF NOT EXISTS stats_tmp (id INTEGER PRIMARY KEY, label TEXT)',
      'ALTER TABLE stats_tmp ADD COLUMN extra TEXT',
      'CREATE INDEX stats_tmp_label ON stats_tmp (label)',
      "INSERT INTO stats_tmp (id, label) VALUES (1, 'a')",
      'DROP TABLE stats_tmp',
    ]) {
      await host.call('stats', 'db.exec', { sql })
    }
    await expectRefused(
      host.call('stats', 'db.query', { sql: 'SELECT * FROM stats_tmp' }),
      'invalid_argument',
    )
  })

  it('refuses a read grant used for a write, and audits the refusal with the token', async () => {
    await expectRefused(
      host.call('stats', 'db.exec', { sql: "UPDATE shared_config SET v = 'light'" }, { token: 'call-42' }),
      'permission_denied',
    )
    const [entry] = await host.hostApi.audit.list({ plugin: 'stats', method: 'db.exec', limit: 1 })
    expect(entry).toMatchObject({
      plugin: 'stats',
      method: 'db.exec',
      code: 'permission_denied',
      token: 'call-42',
    })
    expect(entry?.detail).toContain('shared_config')
  })

  it('refuses a query that returns more rows than the host allows', async () => {
    const many =
      'WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 20000) SELECT n FROM r'
    await expectRefused(host.call('stats', 'db.query', { sql: many }), 'resource_exhausted')
    expect(await host.call('stats', 'db.query', { sql: `${many} LIMIT 2` })).toEqual({
      rows: [{ n: 1 }, { n: 2 }],
    })
  })

  describe('a runaway statement', () => {
    // Unbounded, each runs for minutes on both databases (10^9 rows of recursion).
    const runawayRead =
      'WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 1000000000) SELECT count(*) AS c FROM r'
    const runawayWrite =
      'INSERT INTO stats_runaway (n) WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 1000000000) SELECT n FROM r'

    /** Runs `work` while a 10 ms host timer ticks; returns the longest gap between ticks. */
    async function longestTimerGap(work: () => Promise<unknown>): Promise<number> {
      let last = Date.now()
      let longest = 0
      const ticker = setInterval(() => {
        longest = Math.max(longest, Date.now() - last)
        last = Date.now()
      }, 10)
      try {
        await work()
      } finally {
        clearInterval(ticker)
      }
      return Math.max(longest, Date.now() - last)
    }

    beforeAll(async () => {
      await backends.database.exec('CREATE TABLE stats_runaway (n INTEGER)', [])
    })

    it.each([
      ['a read', 'db.query', runawayRead],
      ['a write to its own table', 'db.exec', runawayWrite],
    ])('%s fails at its deadline, with the host thread free meanwhile', async (_name, method, sql) => {
      const started = Date.now()
      const gap = await longestTimerGap(() =>
        expectRefused(host.call('stats', method, { sql }, { deadline: started + 100 }), 'deadline_exceeded'),
      )
      // Generous bounds on a shared machine; blocking until the statement ended would take minutes.
      expect(Date.now() - started).toBeLessThan(2000)
      expect(gap).toBeLessThan(1000)
    })

    it('leaves nothing behind: no row of the stopped write, no lock, no statement still running', async () => {
      await expectRefused(
        host.call('stats', 'db.exec', { sql: runawayWrite }, { deadline: Date.now() + 100 }),
        'deadline_exceeded',
      )
      // The host writes at once (the write lock was released) and the plugin's next calls work.
      await backends.database.exec('INSERT INTO stats_runaway (n) VALUES ($1)', [-1])
      expect(await host.call('stats', 'db.query', { sql: 'SELECT n FROM stats_runaway' })).toEqual({
        rows: [{ n: -1 }],
      })
      expect(
        await host.call('stats', 'db.exec', { sql: 'DELETE FROM stats_runaway WHERE n = $1', args: [-1] }),
      ).toEqual({ rows_affected: 1 })
      if (dialect === 'postgresql') {
        // Cancelled on the server, not only abandoned by the host.
        const active = await backends.database.query(
          "SELECT count(*) AS n FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%WITH RECURSIVE r(n)%' AND pid <> pg_backend_pid()",
          [],
        )
        expect(active).toEqual([{ n: 0 }])
      } else {
        expect(await backends.database.query('PRAGMA integrity_check', [])).toEqual([
          { integrity_check: 'ok' },
        ])
      }
    })

    it("does not hold up other plugins' calls, nor the host's own statements", async () => {
      let runawaySettled = false
      const runaway = host
        .call('stats', 'db.query', { sql: runawayRead }, { deadline: Date.now() + 3000 })
        .finally(() => {
          runawaySettled = true
        })
      const reads: unknown[] = []
      for (let i = 0; i < 3; i++) {
        reads.push(await host.call('wide', 'db.query', { sql: 'SELECT count(*) AS n FROM stats_daily' }))
        await backends.database.exec('INSERT INTO stats_runaway (n) VALUES ($1)', [i])
        await host.hostApi.audit.list({ plugin: 'stats', limit: 1 })
      }
      expect(await host.call('stats', 'db.exec', { sql: 'DELETE FROM stats_runaway' })).toEqual({
        rows_affected: 3,
      })
      expect(runawaySettled).toBe(false)
      expect(reads).toEqual(Array(3).fill({ rows: [{ n: 2 }] }))
      await expectRefused(runaway, 'deadline_exceeded')
    })
  })

  it('refuses a write whose foreign key check reads an ungranted table', async () => {
    // A foreign key check reads the referenced table: whether 'root' exists in users would leak.
    await backends.database.exec('CREATE TABLE stats_fk (u TEXT REFERENCES users (name))', [])
    const insert = host.call('stats', 'db.exec', {
      sql: 'INSERT INTO stats_fk (u) VALUES ($1)',
      args: ['root'],
    })
    // SQLite sees the check in its program; PostgreSQL does not grant a write its keys would take past the grant.
    await expect(insert).rejects.toMatchObject({ code: 'permission_denied' })
  })

  it('refuses malformed arguments with the field', async () => {
    await expect(
      host.call('stats', 'db.query', { sql: 'SELECT 1', args: [{ nested: true }] }),
    ).rejects.toMatchObject({
      code: 'invalid_argument',
      fields: [expect.objectContaining({ field: 'args.0' })],
    })
  })
})
