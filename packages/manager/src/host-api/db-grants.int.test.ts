/**
 * Database grants, enforced by the database: every ungranted table and object holds secret rows,
 * each leak class found against the parse-based check is performed for real and must be refused,
 * writes and DDL must leave every ungranted object as it was (checksums before and after), and SQL
 * that used to be refused must work. Cases are rows per dialect: a backend adds its own beside.
 * PostgreSQL's leak classes are the rows of testing/postgres-leak-cases.ts (also run directly on the
 * backend by postgres-plugin-roles.int.test.ts), here through the sandboxed host API.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { PluginError } from '@corral/types'
import Database from 'better-sqlite3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Backends } from '../backends/create-backends.js'
import {
  type BackendSetKind,
  backendSetKinds,
  createTestClock,
  openBackendSet,
  prepareBackendSet,
} from '../testing/backend-sets.js'
import { createTestHost, type TestHost } from '../testing/host-fixture.js'
import {
  leakSchema,
  postgresLeakCases,
  type SqlLeakCase,
  ungrantedObjects,
} from '../testing/postgres-leak-cases.js'
import { type FuzzSchema, randomStatements } from '../testing/sql-fuzz.js'

type Dialect = 'sqlite' | 'postgresql'
const dialectOf: Record<BackendSetKind, Dialect> = { embedded: 'sqlite', distributed: 'postgresql' }

/** Kelvin sign: JavaScript lower-cases it to an ASCII "k"; SQLite and PostgreSQL do not. */
const kelvinTable = '\u212Aeys'

const plugins = [
  {
    // PostgreSQL's leak cases attack as this grant (their `leakPrincipal`).
    name: 'stats',
    permissions: [
      { type: 'db' as const, access: ['read' as const, 'write' as const], scope: ['stats_*'] },
      { type: 'db' as const, access: ['read' as const], scope: ['shared_*'] },
    ],
    // The fuzz run sends hundreds of statements a minute.
    rateLimits: { calls_per_second: 1e6, db_queries_per_minute: 1e7 },
  },
  { name: 'wide', permissions: [{ type: 'db' as const, access: ['read' as const], scope: ['*'] }] },
  {
    name: 'other',
    permissions: [{ type: 'db' as const, access: ['read' as const, 'write' as const], scope: ['other_*'] }],
  },
  { name: 'kelvin', permissions: [{ type: 'db' as const, access: ['read' as const], scope: ['keys'] }] },
]

/** The application's schema, made by the host: secrets in every table no plugin here may write. */
const schema: Record<Dialect, string[]> = {
  sqlite: [
    'CREATE TABLE vault (secret TEXT)',
    "INSERT INTO vault VALUES ('SECRET-vault')",
    'CREATE INDEX vault_secret ON vault (secret)',
    'CREATE TABLE stats_daily (day TEXT PRIMARY KEY, hits INTEGER)',
    "INSERT INTO stats_daily VALUES ('2026-11-20', 3), ('2026-11-21', 5)",
    'CREATE TABLE stats_log (v TEXT)',
    'CREATE TABLE stats_parent (id INTEGER PRIMARY KEY)',
    'INSERT INTO stats_parent VALUES (1)',
    'CREATE TABLE vault_child (parent INTEGER REFERENCES stats_parent (id) ON DELETE CASCADE, secret TEXT)',
    "INSERT INTO vault_child VALUES (1, 'SECRET-child')",
    'CREATE VIEW vault_view AS SELECT secret FROM vault JOIN stats_daily ON 1 = 1',
    'CREATE VIEW stats_view AS SELECT secret FROM vault',
    'CREATE TABLE stats_audited (v TEXT)',
    'CREATE TRIGGER stats_audited_copy AFTER INSERT ON stats_audited BEGIN INSERT INTO vault VALUES (new.v); END',
    // Named like a table the plugin makes its own, renames and drops: these must not follow.
    'CREATE TABLE notes (x TEXT PRIMARY KEY)',
    'CREATE VIEW vault_notes AS SELECT x FROM notes',
    'CREATE TABLE vault_notes_ref (x TEXT REFERENCES notes (x) ON DELETE CASCADE)',
    `CREATE TABLE "${kelvinTable}" (secret TEXT)`,
    `INSERT INTO "${kelvinTable}" VALUES ('SECRET-kelvin')`,
  ],
  // The leak cases' schema (the host makes its own corral_policies), and a table for the fuzz run to write.
  postgresql: [
    ...leakSchema.filter((sql) => !sql.includes('corral_policies')),
    'CREATE TABLE stats_log (v TEXT)',
  ],
}

/** Every ungranted object (rows and definitions) as one string: equal before and after each case. */
const checksumSql: Record<Dialect, string> = {
  sqlite: `SELECT json_group_array(x) AS sum FROM (
    SELECT json_array('vault', secret) AS x FROM vault
    UNION ALL SELECT json_array('child', parent, secret) FROM vault_child
    UNION ALL SELECT json_array('kelvin', secret) FROM "${kelvinTable}"
    UNION ALL SELECT json_array(type, name, tbl_name, sql) FROM sqlite_schema WHERE name NOT LIKE 'stats%' OR type IN ('view', 'trigger')
    ORDER BY 1)`,
  postgresql: ungrantedObjects.join(';\n'),
}

interface Refusal {
  name: string
  plugin?: string
  method?: 'db.query' | 'db.exec'
  /** Statements the plugin runs first, on its own objects; they must succeed. */
  prepare?: readonly string[]
  sql: string
  code?: 'permission_denied' | 'invalid_argument'
}

/** What a plugin may see that looks like a leak and is not (documented in the README's table). */
interface Visible {
  name: string
  plugin?: string
  prepare?: readonly string[]
  sql: string
  rows: Record<string, unknown>[]
}

/** The grant of plugin `wide`, the only other grant the PostgreSQL leak cases attack as. */
const wideGrant = { plugin: 'stats', read: ['*'], write: [] }

/** The plugin of this suite holding a PostgreSQL leak case's grant. */
function pluginOf(leak: SqlLeakCase): string {
  if (leak.principal === undefined) return 'stats'
  if (JSON.stringify(leak.principal) !== JSON.stringify(wideGrant)) {
    throw new Error(`no plugin here holds the grant of case ${leak.name}`)
  }
  return 'wide'
}

const postgresRefusals: Refusal[] = postgresLeakCases.flatMap((leak) =>
  'code' in leak.expect
    ? [
        {
          name: `${leak.leak}: ${leak.name}`,
          plugin: pluginOf(leak),
          ...(leak.prepare === undefined ? {} : { prepare: leak.prepare }),
          sql: leak.sql,
          code: leak.expect.code as Refusal['code'],
        },
      ]
    : [],
)

const postgresVisible: Visible[] = postgresLeakCases.flatMap((leak) =>
  'rows' in leak.expect
    ? [
        {
          name: `${leak.leak}: ${leak.name}`,
          plugin: pluginOf(leak),
          ...(leak.prepare === undefined ? {} : { prepare: leak.prepare }),
          sql: leak.sql,
          rows: leak.expect.rows,
        },
      ]
    : [],
)

/** Leak classes, per dialect: each must be refused and must change nothing ungranted. */
const refusals: Record<Dialect, Refusal[]> = {
  sqlite: [
    {
      name: 'CREATE TABLE AS over a secret table',
      method: 'db.exec',
      sql: 'CREATE TABLE loot AS SELECT * FROM vault',
    },
    {
      name: 'CREATE TABLE AS through a CTE',
      method: 'db.exec',
      sql: 'CREATE TABLE stats_loot AS WITH t AS (SELECT secret FROM vault) SELECT * FROM t',
    },
    {
      name: 'a name JavaScript folds to a granted one',
      plugin: 'kelvin',
      sql: `SELECT * FROM "${kelvinTable}"`,
    },
    {
      name: 'pragma_table_list lists host tables',
      plugin: 'wide',
      sql: 'SELECT name FROM pragma_table_list',
    },
    { name: 'pragma_table_info of a host table', sql: "SELECT * FROM pragma_table_info('vault')" },
    {
      name: 'pragma_index_list, schema-qualified',
      plugin: 'wide',
      sql: "SELECT * FROM pragma_index_list('vault', 'public')",
    },
    { name: 'dbstat lists host tables', plugin: 'wide', sql: 'SELECT name FROM dbstat' },
    { name: 'a granted view over a secret table', sql: 'SELECT * FROM stats_view' },
    { name: "the application's catalog", plugin: 'wide', sql: 'SELECT sql FROM public.sqlite_schema' },
    {
      name: 'an index of a secret table',
      sql: "SELECT count(*) FROM stats_daily WHERE 'SECRET-vault' IN (SELECT secret FROM vault INDEXED BY vault_secret)",
    },
    {
      name: 'DROP of a granted table that ungranted rows reference ON DELETE CASCADE',
      method: 'db.exec',
      sql: 'DROP TABLE stats_parent',
    },
    { name: 'DELETE cascading into an ungranted table', method: 'db.exec', sql: 'DELETE FROM stats_parent' },
    {
      name: "renaming a granted table (rewrites the host's views)",
      method: 'db.exec',
      sql: 'ALTER TABLE stats_daily RENAME TO stats_renamed',
    },
    {
      name: 'a trigger of the host writing an ungranted table',
      method: 'db.exec',
      sql: "INSERT INTO stats_audited VALUES ('x')",
    },
    { name: 'DROP INDEX of a host index', method: 'db.exec', sql: 'DROP INDEX public.vault_secret' },
    {
      name: 'CREATE INDEX on a host table',
      method: 'db.exec',
      sql: 'CREATE INDEX public.stats_i ON stats_daily (hits)',
    },
    {
      name: 'a temporary trigger on a granted table',
      method: 'db.exec',
      sql: 'CREATE TEMP TRIGGER t AFTER INSERT ON stats_log BEGIN DELETE FROM vault; END',
    },
    { name: 'a temporary view', method: 'db.exec', sql: 'CREATE TEMP VIEW v AS SELECT 1' },
    { name: 'ATTACH', method: 'db.exec', sql: "ATTACH DATABASE '/tmp/corral-evil.db' AS evil" },
    { name: 'PRAGMA writable_schema', method: 'db.exec', sql: 'PRAGMA writable_schema = ON' },
    { name: 'a PRAGMA after a comment', method: 'db.exec', sql: '/* x */ -- y\n PRAGMA foreign_keys = OFF' },
    {
      name: 'a write through a CTE-built subquery',
      method: 'db.exec',
      sql: "UPDATE stats_daily SET day = (WITH s AS (SELECT secret FROM vault) SELECT secret FROM s) WHERE day = '2026-11-20'",
    },
    {
      name: 'INSERT … RETURNING reading a secret table',
      method: 'db.query',
      sql: 'INSERT INTO stats_log SELECT secret FROM vault RETURNING v',
    },
    {
      name: "AUTOINCREMENT's counters of every table, copied by a granted write",
      method: 'db.exec',
      sql: 'INSERT INTO stats_log SELECT name || seq FROM public.SQLITE_SEQUENCE',
    },
    {
      name: 'an own table made by a plugin granted reads only',
      plugin: 'wide',
      method: 'db.exec',
      sql: 'CREATE TABLE mine (a)',
    },
    {
      name: 'a virtual table made by the plugin',
      method: 'db.exec',
      sql: 'CREATE VIRTUAL TABLE notes_fts USING fts5(body)',
    },
  ],
  postgresql: postgresRefusals,
}

/** Reads that look like leaks and are not, per dialect (see the README's semantics table). */
const visible: Record<Dialect, Visible[]> = {
  sqlite: [
    {
      name: 'a granted table that an ungranted one references stays readable',
      sql: 'SELECT id FROM stats_parent',
      rows: [{ id: 1 }],
    },
  ],
  postgresql: postgresVisible,
}

/** Rows of {@link nowAllowed} both dialects run as written, in the same place of each list (state carries over). */
const portableNowAllowed = [
  {
    name: 'LIMIT $1',
    sql: 'SELECT day FROM stats_daily ORDER BY day LIMIT $1',
    args: [1],
    result: { rows: [{ day: '2026-11-20' }] },
  },
  {
    name: 'CURRENT_TIMESTAMP',
    sql: 'SELECT count(*) AS n FROM notes WHERE at <= CURRENT_TIMESTAMP',
    result: { rows: [{ n: 3 }] },
  },
  {
    name: 'UPDATE … FROM',
    sql: 'UPDATE notes SET body = s.day FROM (SELECT day FROM stats_daily WHERE hits = 3) AS s WHERE notes.id = 1 RETURNING body',
    result: { rows: [{ body: '2026-11-20' }] },
  },
  {
    name: 'EXCEPT',
    sql: 'SELECT day FROM stats_daily EXCEPT SELECT body FROM notes',
    result: { rows: [{ day: '2026-11-21' }] },
  },
  {
    name: 'INTERSECT',
    sql: 'SELECT day FROM stats_daily INTERSECT SELECT body FROM notes',
    result: { rows: [{ day: '2026-11-20' }] },
  },
]

/** SQL that used to be refused and now works (the README's table), per dialect, with its result. */
const nowAllowed: Record<
  Dialect,
  { name: string; sql: string; args?: (string | number)[]; result: unknown }[]
> = {
  sqlite: [
    {
      name: 'an own table without a prefix',
      sql: 'CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, at TEXT DEFAULT CURRENT_TIMESTAMP)',
      result: { rows: [] },
    },
    {
      name: 'DEFAULT VALUES',
      sql: 'INSERT INTO notes DEFAULT VALUES RETURNING id',
      result: { rows: [{ id: 1 }] },
    },
    {
      name: '? placeholders',
      sql: 'INSERT INTO notes (body) VALUES (?), (?) RETURNING id',
      args: ['a', 'b'],
      result: { rows: [{ id: 2 }, { id: 3 }] },
    },
    {
      name: 'an upsert',
      sql: 'INSERT INTO stats_daily (day, hits) VALUES ($1, 1) ON CONFLICT (day) DO UPDATE SET hits = hits + 1 RETURNING hits',
      args: ['2026-11-21'],
      result: { rows: [{ hits: 6 }] },
    },
    ...portableNowAllowed,
    {
      name: 'json_set',
      sql: `SELECT json_set('{"a":1}', '$.b', 2) AS j`,
      result: { rows: [{ j: '{"a":1,"b":2}' }] },
    },
    {
      name: 'json_each',
      sql: "SELECT value FROM json_each('[1,2]')",
      result: { rows: [{ value: 1 }, { value: 2 }] },
    },
    {
      name: 'FILTER (WHERE …)',
      sql: 'SELECT count(*) FILTER (WHERE hits > 4) AS n FROM stats_daily',
      result: { rows: [{ n: 1 }] },
    },
    {
      name: 'NULLS LAST',
      sql: 'SELECT body FROM notes ORDER BY body NULLS LAST LIMIT 1',
      result: { rows: [{ body: '2026-11-20' }] },
    },
    {
      name: 'CREATE INDEX and DROP INDEX of its own',
      sql: 'CREATE INDEX notes_body ON notes (body)',
      result: { rows: [] },
    },
    { name: 'DROP INDEX', sql: 'DROP INDEX notes_body', result: { rows: [] } },
    {
      name: 'a view of its own tables',
      sql: 'CREATE VIEW notes_v AS SELECT body FROM notes WHERE id = 1',
      result: { rows: [] },
    },
    {
      name: 'reading its own view',
      sql: 'SELECT body FROM notes_v',
      result: { rows: [{ body: '2026-11-20' }] },
    },
    { name: 'renaming its own table', sql: 'ALTER TABLE notes RENAME TO notes2', result: { rows: [] } },
    { name: 'DROP of its own table', sql: 'DROP TABLE notes2', result: { rows: [] } },
    {
      name: 'an application table as public.t, beside its own',
      sql: 'SELECT hits FROM public.stats_daily WHERE day = $1',
      args: ['2026-11-20'],
      result: { rows: [{ hits: 3 }] },
    },
  ],
  postgresql: [
    {
      name: 'an own table without a prefix',
      sql: 'CREATE TABLE notes (id SERIAL PRIMARY KEY, body TEXT, at TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP)',
      result: { rows: [] },
    },
    {
      name: 'DEFAULT VALUES',
      sql: 'INSERT INTO notes DEFAULT VALUES RETURNING id',
      result: { rows: [{ id: 1 }] },
    },
    {
      name: '$n placeholders (the portable form)',
      sql: 'INSERT INTO notes (body) VALUES ($1), ($2) RETURNING id',
      args: ['a', 'b'],
      result: { rows: [{ id: 2 }, { id: 3 }] },
    },
    {
      name: 'an upsert',
      sql: 'INSERT INTO stats_daily (day, hits) VALUES ($1, 1) ON CONFLICT (day) DO UPDATE SET hits = stats_daily.hits + 1 RETURNING hits',
      args: ['2026-11-21'],
      result: { rows: [{ hits: 6 }] },
    },
    ...portableNowAllowed,
    {
      name: 'unquoted mixed-case names',
      sql: 'SELECT Day FROM Stats_Daily WHERE Hits = 3',
      result: { rows: [{ day: '2026-11-20' }] },
    },
    {
      name: 'FETCH FIRST',
      sql: 'SELECT body FROM notes ORDER BY id FETCH FIRST 1 ROWS ONLY',
      result: { rows: [{ body: '2026-11-20' }] },
    },
    {
      name: 'NULLS LAST',
      sql: 'SELECT body FROM notes ORDER BY body NULLS LAST LIMIT 1',
      result: { rows: [{ body: '2026-11-20' }] },
    },
    {
      name: 'DELETE … USING',
      sql: "DELETE FROM notes USING (SELECT 'b' AS b) AS x WHERE notes.body = x.b RETURNING notes.id",
      result: { rows: [{ id: 3 }] },
    },
    {
      name: 'jsonb_set',
      sql: `SELECT jsonb_set('{"a":1}', '{b}', '2') AS j`,
      result: { rows: [{ j: { a: 1, b: 2 } }] },
    },
    {
      name: 'jsonb_array_elements',
      sql: "SELECT value FROM jsonb_array_elements('[1,2]')",
      result: { rows: [{ value: 1 }, { value: 2 }] },
    },
    {
      name: 'FILTER (WHERE …)',
      sql: 'SELECT count(*) FILTER (WHERE hits > 4) AS n FROM stats_daily',
      result: { rows: [{ n: 1 }] },
    },
    {
      name: 'CREATE INDEX of its own',
      sql: 'CREATE INDEX notes_body ON notes (body)',
      result: { rows: [] },
    },
    { name: 'DROP INDEX', sql: 'DROP INDEX notes_body', result: { rows: [] } },
    {
      name: 'a view of its own tables',
      sql: 'CREATE VIEW notes_v AS SELECT body FROM notes WHERE id = 1',
      result: { rows: [] },
    },
    {
      name: 'reading its own view',
      sql: 'SELECT body FROM notes_v',
      result: { rows: [{ body: '2026-11-20' }] },
    },
    { name: 'TRUNCATE of its own table', sql: 'TRUNCATE notes', result: { rows: [] } },
    { name: 'renaming its own table', sql: 'ALTER TABLE notes RENAME TO notes2', result: { rows: [] } },
    { name: 'DROP of its own table', sql: 'DROP TABLE notes2 CASCADE', result: { rows: [] } },
    {
      name: 'an application table as public.t, beside its own',
      sql: 'SELECT hits FROM public.stats_daily WHERE day = $1',
      args: ['2026-11-20'],
      result: { rows: [{ hits: 3 }] },
    },
  ],
}

/** The differential run: random SQL as plugin `stats`, the secrets and checksums as the oracle. */
const fuzzSchema: Record<Dialect, FuzzSchema | undefined> = {
  sqlite: {
    // Granted tables drawn as often as secret ones: most statements then run, or nearly do.
    tables: [
      ...Array(4).fill({ name: 'stats_daily', columns: ['day', 'hits'] }),
      ...Array(3).fill({ name: 'stats_log', columns: ['v'] }),
      { name: 'stats_view', columns: ['secret'] },
      { name: 'vault', columns: ['secret'] },
      { name: 'vault_child', columns: ['secret', 'parent'] },
      { name: 'vault_view', columns: ['secret'] },
      { name: kelvinTable, columns: ['secret'] },
      { name: 'sqlite_schema', columns: ['sql'] },
      { name: 'sqlite_sequence', columns: ['name'] },
      { name: 'corral_policies', columns: ['*'] },
    ],
    writable: [
      ...Array(4).fill({ name: 'stats_log', columns: ['v'] }),
      { name: 'stats_audited', columns: ['v'] },
      { name: 'stats_parent', columns: ['id'] },
      { name: 'vault', columns: ['secret'] },
      { name: 'vault_child', columns: ['secret'] },
    ],
    sources: [
      "json_each('[1]')",
      "json_each('[1]')",
      "pragma_table_info('vault')",
      'pragma_table_list',
      'dbstat',
      "json_tree('{}')",
      'sqlite_temp_schema',
    ],
    functions: ['upper', 'length', 'hex', 'quote', 'typeof', 'json_quote', 'unicode'],
    qualifiers: ['', '', '', '', 'public.', 'main.', 'temp.'],
  },
  postgresql: {
    tables: [
      ...Array(4).fill({ name: 'stats_daily', columns: ['day', 'hits'] }),
      ...Array(3).fill({ name: 'stats_log', columns: ['v'] }),
      { name: 'shared_config', columns: ['k', 'v'] },
      { name: 'shared_user_names', columns: ['name'] },
      { name: 'users', columns: ['password'] },
      { name: 'secrets', columns: ['v'] },
      { name: 'hidden_child', columns: ['note'] },
      { name: 'secret_events', columns: ['v'] },
      { name: 'corral_policies', columns: ['policy'] },
      { name: 'pg_authid', columns: ['rolpassword'] },
    ],
    writable: [
      ...Array(4).fill({ name: 'stats_log', columns: ['v'] }),
      { name: 'stats_ruled', columns: ['v'] },
      { name: 'stats_definer', columns: ['v'] },
      { name: 'stats_parent', columns: ['id'] },
      { name: 'users', columns: ['password'] },
      { name: 'secrets', columns: ['v'] },
      { name: 'vault_child', columns: ['secret'] },
    ],
    sources: [
      "jsonb_array_elements('[1]')",
      "jsonb_array_elements('[1]')",
      "query_to_xml('SELECT * FROM secrets', true, true, '')",
      'pg_statistic',
      'generate_series(1, 2)',
      'unnest(ARRAY(SELECT password FROM users))',
    ],
    functions: ['upper', 'length', 'md5', 'quote_literal', 'lower', 'pg_typeof'],
    qualifiers: ['', '', '', '', 'public.', 'plugin_stats.', 'shared_stuff.'],
  },
}
/** Statements per run: a bounded CI budget (a few seconds). */
const fuzzStatements = 400
const fuzzSeed = 20261129

describe.each(backendSetKinds)('database grants on the %s backends', (kind) => {
  const dialect = dialectOf[kind]
  let backends: Backends
  let host: TestHost
  let dir: string

  /** One query per statement: PostgreSQL's extended protocol runs one at a time. */
  const checksum = async () =>
    Promise.all(checksumSql[dialect].split(';\n').map((sql) => backends.database.query(sql, [])))

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'corral-grants-'))
    const config = await prepareBackendSet(kind, 'grants')
    backends = await openBackendSet(
      kind === 'embedded' ? { ...config, sqlitePath: join(dir, 'app.db') } : config,
      createTestClock().now,
    )
    for (const sql of schema[dialect]) await backends.database.exec(sql, [])
    host = await createTestHost(backends, plugins)
  })
  afterAll(async () => {
    await backends?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  // Before the refusals: a view a refused case prepares would make database_to_xml fail, not leak.
  it.each(visible[dialect])('shows $name, and nothing secret', async (seen) => {
    for (const sql of seen.prepare ?? []) await host.call(seen.plugin ?? 'stats', 'db.exec', { sql })
    const before = await checksum()
    const result = await host.call(seen.plugin ?? 'stats', 'db.query', { sql: seen.sql })
    expect(JSON.stringify(result)).not.toContain('SECRET')
    expect(result).toEqual({ rows: seen.rows })
    expect(await checksum()).toEqual(before)
  })

  it.each(refusals[dialect])('refuses $name, and changes nothing ungranted', async (refusal) => {
    for (const sql of refusal.prepare ?? []) await host.call(refusal.plugin ?? 'stats', 'db.exec', { sql })
    const before = await checksum()
    const call = host.call(refusal.plugin ?? 'stats', refusal.method ?? 'db.query', { sql: refusal.sql })
    await expect(call).rejects.toMatchObject({ code: refusal.code ?? 'permission_denied' })
    await expect(call).rejects.not.toMatchObject({ message: expect.stringContaining('SECRET') })
    expect(await checksum()).toEqual(before)
  })

  it.each(nowAllowed[dialect])('runs $name', async ({ sql, args, result }) => {
    const before = await checksum()
    expect(await host.call('stats', 'db.query', { sql, args: args ?? [] })).toEqual(result)
    expect(await checksum()).toEqual(before)
  })

  it("keeps each plugin's own tables apart", async () => {
    await host.call('stats', 'db.exec', { sql: "CREATE TABLE mine AS SELECT 'stats' AS who" })
    await host.call('other', 'db.exec', { sql: "CREATE TABLE mine AS SELECT 'other' AS who" })
    expect(await host.call('stats', 'db.query', { sql: 'SELECT who FROM mine' })).toEqual({
      rows: [{ who: 'stats' }],
    })
    expect(await host.call('other', 'db.query', { sql: 'SELECT who FROM mine' })).toEqual({
      rows: [{ who: 'other' }],
    })
    await expect(backends.database.query('SELECT * FROM mine', [])).rejects.toMatchObject({
      code: 'invalid_argument',
    })
  })

  it(`finds no leak in ${fuzzStatements} random statements (seed ${fuzzSeed})`, async () => {
    const fuzz = fuzzSchema[dialect]
    if (fuzz === undefined) throw new Error(`no fuzz schema for ${dialect}`)
    const before = await checksum()
    const outcomes = { ran: 0, permission_denied: 0, invalid_argument: 0 }
    for (const sql of randomStatements(fuzz, fuzzSeed, fuzzStatements)) {
      let outcome: string
      try {
        outcome = JSON.stringify(await host.call('stats', 'db.query', { sql }))
        outcomes.ran++
      } catch (error) {
        const { code, message } = error as PluginError
        // Refused by the grant, or SQL the database does not accept: nothing else (a rate limit or
        // a deadline would leave the statement untested).
        if (code !== 'permission_denied' && code !== 'invalid_argument') throw error
        outcomes[code]++
        outcome = message
      }
      expect(outcome, sql).not.toContain('SECRET')
      expect(await checksum(), sql).toEqual(before)
    }
    // The run means something only if a fair share both ran and was refused by the grant.
    expect(outcomes.ran).toBeGreaterThan(fuzzStatements / 10)
    expect(outcomes.permission_denied).toBeGreaterThan(fuzzStatements / 10)
  })
})

describe('a statement whose tables change while it waits for the write lock (SQLite)', () => {
  let backends: Backends
  let host: TestHost
  let dir: string

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'corral-grants-race-'))
    backends = await openBackendSet(
      { kind: 'embedded', sqlitePath: join(dir, 'app.db') },
      createTestClock().now,
    )
    for (const sql of [
      'CREATE TABLE vault (secret TEXT)',
      "INSERT INTO vault VALUES ('SECRET-vault')",
      'CREATE TABLE stats_src (v TEXT)',
      "INSERT INTO stats_src VALUES ('harmless')",
      'CREATE TABLE stats_log (v TEXT)',
    ]) {
      await backends.database.exec(sql, [])
    }
    host = await createTestHost(backends, plugins.slice(0, 1))
  })
  afterAll(async () => {
    await backends?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('is checked against the schema it runs on', async () => {
    // Another connection holds the write lock; the plugin's write waits for it.
    const other = new Database(join(dir, 'app.db'))
    try {
      other.exec('BEGIN IMMEDIATE')
      const copy = host.call('stats', 'db.exec', { sql: 'INSERT INTO stats_log SELECT v FROM stats_src' })
      // Meanwhile the granted name comes to mean a view over the secret table.
      const settled = await Promise.race([
        copy.then(
          () => 'settled',
          () => 'settled',
        ),
        sleep(300),
      ])
      expect(settled).toBeUndefined()
      other.exec('DROP TABLE stats_src')
      other.exec('CREATE VIEW stats_src AS SELECT secret AS v FROM vault')
      other.exec('COMMIT')
      await expect(copy).rejects.toMatchObject({
        code: 'permission_denied',
        message: expect.stringContaining('vault'),
      })
    } finally {
      if (other.inTransaction) other.exec('ROLLBACK')
      other.close()
    }
    expect(await backends.database.query('SELECT count(*) AS n FROM stats_log', [])).toEqual([{ n: 0 }])
  })
})

function sleep(ms: number): Promise<undefined> {
  return new Promise((resolve) => setTimeout(() => resolve(undefined), ms))
}
