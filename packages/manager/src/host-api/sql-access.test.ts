import { describe, expect, it } from 'vitest'
import { analyzeSql, maxSqlNesting, type SqlDialect } from './sql-access.js'

const dialects: SqlDialect[] = ['sqlite', 'postgresql']

describe.each(dialects)('analyzeSql (%s)', (dialect) => {
  it.each([
    ['a plain read', 'SELECT a FROM t WHERE b = $1', { reads: ['t'], writes: [], ddl: [] }],
    [
      'a CTE: the CTE name is not a table',
      'WITH x AS (SELECT * FROM t) SELECT * FROM x',
      { reads: ['t'], writes: [], ddl: [] },
    ],
    [
      'a CTE used in a later CTE',
      'WITH x AS (SELECT * FROM t), y AS (SELECT * FROM x) SELECT * FROM y',
      { reads: ['t'], writes: [], ddl: [] },
    ],
    [
      'nested subqueries',
      'SELECT * FROM t WHERE a IN (SELECT b FROM u WHERE c = (SELECT max(d) FROM v))',
      { reads: ['t', 'u', 'v'], writes: [], ddl: [] },
    ],
    ['a union', 'SELECT a FROM t UNION ALL SELECT a FROM u', { reads: ['t', 'u'], writes: [], ddl: [] }],
    ['INSERT … SELECT', 'INSERT INTO t (a) SELECT b FROM u', { reads: ['u'], writes: ['t'], ddl: [] }],
    [
      'INSERT … RETURNING also reads',
      'INSERT INTO t (a) VALUES ($1) RETURNING a',
      { reads: ['t'], writes: ['t'], ddl: [] },
    ],
    [
      'UPDATE with a subquery',
      'UPDATE t SET a = (SELECT max(b) FROM u)',
      { reads: ['u'], writes: ['t'], ddl: [] },
    ],
    ['DELETE', 'DELETE FROM t WHERE a = $1', { reads: [], writes: ['t'], ddl: [] }],
    [
      'ANY over a subquery',
      'SELECT * FROM t WHERE a = ANY (SELECT b FROM u)',
      { reads: ['t', 'u'], writes: [], ddl: [] },
    ],
    [
      'a foreign key: the referenced table is read (a constraint error tells what it holds)',
      'CREATE TABLE p_x (a INTEGER REFERENCES u (id))',
      { reads: ['u'], writes: [], ddl: ['p_x'] },
    ],
    [
      'a CHECK constraint with a subquery',
      'CREATE TABLE p_x (a INTEGER CHECK (a > (SELECT count(*) FROM u)))',
      { reads: ['u'], writes: [], ddl: ['p_x'] },
    ],
    ['CREATE TABLE', 'CREATE TABLE p_x (a INTEGER)', { reads: [], writes: [], ddl: ['p_x'] }],
    [
      'CREATE INDEX: index and table',
      'CREATE INDEX p_i ON p_x (a)',
      { reads: [], writes: [], ddl: ['p_i', 'p_x'] },
    ],
    [
      'ALTER … RENAME: both names',
      'ALTER TABLE p_x RENAME TO p_y',
      { reads: [], writes: [], ddl: ['p_x', 'p_y'] },
    ],
  ])('finds the tables of %s', (_name, sql, expected) => {
    const access = analyzeSql(sql, dialect)
    expect({ reads: [...access.reads].sort(), writes: access.writes, ddl: [...access.ddl].sort() }).toEqual(
      expected,
    )
  })

  it('keeps a non-default schema and drops the default one', () => {
    const defaultSchema = dialect === 'sqlite' ? 'main' : 'public'
    expect(analyzeSql(`SELECT * FROM ${defaultSchema}.t, other.u`, dialect).reads).toEqual(['t', 'other.u'])
  })

  it('treats a CTE name as a table again outside its statement', () => {
    const access = analyzeSql('SELECT * FROM (WITH t AS (SELECT 1 AS a) SELECT a FROM t) s, t', dialect)
    expect(access.reads).toEqual(['t'])
  })

  it.each([
    ['more than one statement', 'SELECT 1; SELECT 2', 'invalid_argument'],
    ['unparsable SQL', 'SELEC 1', 'invalid_argument'],
    ['a function outside the allowlist', "SELECT lo_import('/etc/passwd')", 'permission_denied'],
    ['a schema-qualified function', 'SELECT pg_catalog.lower(a) FROM t', 'permission_denied'],
    [
      'a three-part name',
      'SELECT * FROM postgres.other.t',
      dialect === 'sqlite' ? 'invalid_argument' : 'permission_denied',
    ],
    ['CREATE VIEW', 'CREATE VIEW v AS SELECT 1', 'permission_denied'],
    ['DROP of something that is not a table or index', 'DROP VIEW v', 'permission_denied'],
  ])('refuses %s', (_name, sql, code) => {
    expect(() => analyzeSql(sql, dialect)).toThrow(expect.objectContaining({ code }))
  })
})

describe('analyzeSql across dialects', () => {
  it('reads the DO UPDATE of a PostgreSQL upsert as part of the INSERT', () => {
    const access = analyzeSql(
      'INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET a = (SELECT max(b) FROM u)',
      'postgresql',
    )
    expect(access).toMatchObject({ reads: ['u'], writes: ['t'] })
  })

  it('compares SQLite names case-insensitively and PostgreSQL names as written', () => {
    expect(analyzeSql('SELECT * FROM Stats_Daily', 'sqlite').reads).toEqual(['stats_daily'])
    expect(analyzeSql('SELECT * FROM "Stats_Daily"', 'postgresql').reads).toEqual(['Stats_Daily'])
  })

  it('resolves a self-reference of a non-recursive CTE to the table in PostgreSQL, to the CTE in SQLite', () => {
    const sql = 'WITH r AS (SELECT * FROM r) SELECT * FROM r'
    expect(analyzeSql(sql, 'postgresql').reads).toEqual(['r'])
    expect(analyzeSql(sql, 'sqlite').reads).toEqual([])
  })

  it('refuses parentheses nested deeper than it parses, before parsing', () => {
    const nested = (depth: number) => `SELECT ${'('.repeat(depth)}1${')'.repeat(depth)} AS x`
    expect(analyzeSql(nested(maxSqlNesting), 'postgresql').statement).toBe('select')
    expect(() => analyzeSql(nested(maxSqlNesting + 1), 'postgresql')).toThrow(/parentheses/)
    // Inside a string they are data.
    expect(analyzeSql(`SELECT '${'('.repeat(100)}' AS x`, 'postgresql').statement).toBe('select')
  })
})
