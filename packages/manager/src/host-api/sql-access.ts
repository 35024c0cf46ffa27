import { PluginError } from '@corral/types'
import sqlParser from 'node-sql-parser'

/** The SQL dialects the host's databases speak: one per backend. */
export type SqlDialect = 'sqlite' | 'postgresql'

/**
 * What one SQL statement touches, as found by parsing it. Table names are normalised: the default
 * schema (`main`, `public`) is dropped, other schemas stay as `schema.table`; SQLite names are
 * lower-cased (SQLite compares them case-insensitively), PostgreSQL names are kept as written.
 */
export interface SqlAccess {
  /** The statement kind: `select`, `insert`, `replace`, `update`, `delete`, `create`, `drop`, `alter`. */
  statement: string
  /** Tables whose rows the statement reads. */
  readonly reads: readonly string[]
  /** Tables whose rows the statement writes. */
  readonly writes: readonly string[]
  /** Tables and indexes whose definition the statement creates, changes or drops. */
  readonly ddl: readonly string[]
}

/** The largest SQL text a plugin may send: parsing is not free. */
export const maxSqlLength = 64 * 1024

/** The deepest nesting of parentheses parsed: the parser's time can grow exponentially with it. */
export const maxSqlNesting = 32

/** How deep parentheses nest in `sql`, outside quoted strings and identifiers. */
function nestingDepth(sql: string): number {
  let depth = 0
  let deepest = 0
  let quote: string | undefined
  for (const char of sql) {
    if (quote !== undefined) {
      if (char === quote) quote = undefined
    } else if (char === "'" || char === '"') {
      quote = char
    } else if (char === '(') {
      deepest = Math.max(deepest, ++depth)
    } else if (char === ')') {
      depth--
    }
  }
  return deepest
}

/**
 * Functions a plugin's SQL may call (lower-case). An allowlist, not a denylist: a database has
 * functions that read files (`pg_read_file`, `readfile`), load code (`load_extension`), run SQL
 * given as text (`query_to_xml`, `dblink`) or change settings (`set_config`); none of those can be
 * checked against a table grant, so anything not listed here is refused. Subqueries inside
 * function arguments are parsed like any other and need their own grants.
 */
export const allowedSqlFunctions: ReadonlySet<string> = new Set([
  // aggregates
  'count',
  'sum',
  'avg',
  'min',
  'max',
  'total',
  'group_concat',
  'string_agg',
  'array_agg',
  'json_agg',
  'jsonb_agg',
  'json_group_array',
  'json_group_object',
  'bool_and',
  'bool_or',
  'every',
  // window functions
  'row_number',
  'rank',
  'dense_rank',
  'ntile',
  'lag',
  'lead',
  'first_value',
  'last_value',
  'nth_value',
  'percent_rank',
  'cume_dist',
  // syntax the parser reads as a call; a subquery inside is walked like any other
  'exists',
  'any',
  'all',
  'some',
  // scalar: null handling, numbers, strings
  'exists',
  'coalesce',
  'nullif',
  'ifnull',
  'iif',
  'greatest',
  'least',
  'abs',
  'round',
  'ceil',
  'ceiling',
  'floor',
  'mod',
  'power',
  'sqrt',
  'sign',
  'trunc',
  'random',
  'length',
  'char_length',
  'octet_length',
  'lower',
  'upper',
  'trim',
  'ltrim',
  'rtrim',
  'substr',
  'substring',
  'replace',
  'instr',
  'position',
  'concat',
  'concat_ws',
  'left',
  'right',
  'lpad',
  'rpad',
  'split_part',
  'starts_with',
  'printf',
  'format',
  'hex',
  'char',
  'unicode',
  'typeof',
  'md5',
  'regexp_replace',
  'gen_random_uuid',
  // dates
  'date',
  'time',
  'datetime',
  'julianday',
  'strftime',
  'unixepoch',
  'now',
  'date_trunc',
  'date_part',
  'to_char',
  'to_timestamp',
  'to_date',
  'age',
  // JSON and arrays
  'json',
  'json_extract',
  'json_array',
  'json_object',
  'json_array_length',
  'json_type',
  'json_valid',
  'json_build_object',
  'jsonb_build_object',
  'json_build_array',
  'jsonb_build_array',
  'to_json',
  'to_jsonb',
  'jsonb_extract_path_text',
  'array_length',
  'array_to_string',
  'string_to_array',
  'unnest',
  'generate_series',
  'json_each',
  'json_tree',
  'json_array_elements',
  'jsonb_array_elements',
  'json_each_text',
  'jsonb_each',
  'jsonb_each_text',
])

const { Parser } = sqlParser
const parser = new Parser()

/** Statement kinds a plugin may run; everything else (PRAGMA, ATTACH, SET, transactions, …) is refused. */
const dataStatements = new Set(['select', 'insert', 'replace', 'update', 'delete'])
const ddlStatements = new Set(['create', 'drop', 'alter'])
/** Keys of the parser's output that are bookkeeping, not syntax. */
const ignoredKeys = new Set(['tableList', 'columnList'])

type Node = Record<string, unknown>

/** CTE names visible at a point of the statement, as the dialect compares them. */
type Scope = ReadonlySet<string>

function isNode(value: unknown): value is Node {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function denied(message: string): PluginError {
  return new PluginError('permission_denied', message)
}

/** Collects what a statement touches while the walker goes through its syntax tree. */
class AccessCollector {
  readonly reads = new Set<string>()
  readonly writes = new Set<string>()
  readonly ddl = new Set<string>()
  /** `db::table` of every table reference seen, CTE references included: checked against the parser's own list. */
  readonly seen = new Set<string>()

  constructor(readonly dialect: SqlDialect) {}

  /** How the dialect compares names: SQLite case-insensitively, PostgreSQL exactly (quoting is not in the tree). */
  fold(name: string): string {
    return this.dialect === 'sqlite' ? name.toLowerCase() : name
  }

  tableName(db: unknown, table: string): string {
    const defaultSchema = this.dialect === 'sqlite' ? 'main' : 'public'
    const schema = typeof db === 'string' && db !== '' ? this.fold(db) : undefined
    return schema === undefined || schema === defaultSchema
      ? this.fold(table)
      : `${schema}.${this.fold(table)}`
  }

  /** Records a table reference; a bare name that is a visible CTE reads the CTE, not a table. */
  table(ref: Node, role: 'read' | 'write' | 'ddl', scope: Scope): string | undefined {
    const table = ref.table as string
    const db = ref.db
    if (ref.schema !== undefined && ref.schema !== null) {
      throw denied(
        `database.schema.table names are not allowed (${String(db)}.${String(ref.schema)}.${table})`,
      )
    }
    this.seen.add(`${db ?? 'null'}::${table}`)
    if ((db === null || db === undefined) && scope.has(this.fold(table))) return undefined
    const name = this.tableName(db, table)
    if (role === 'read') this.reads.add(name)
    else if (role === 'write') this.writes.add(name)
    else this.ddl.add(name)
    return name
  }
}

function isTableRef(node: Node): boolean {
  return typeof node.table === 'string' && 'db' in node && node.type !== 'column_ref'
}

function functionName(node: Node): string {
  const name = node.name
  if (typeof name === 'string') return name.toLowerCase()
  if (isNode(name) && Array.isArray(name.name)) {
    const parts = name.name.map((part: unknown) => (isNode(part) ? String(part.value) : String(part)))
    const schema = isNode(name.schema) ? `${String(name.schema.value)}.` : ''
    return `${schema}${parts.join('.')}`.toLowerCase()
  }
  throw denied('a function call could not be analysed')
}

/**
 * Whether a node is a statement of its own. The `DO UPDATE SET …` of an upsert is typed `update`
 * but has no target table: it writes the INSERT's target, and its expressions are walked as such.
 */
function isStatement(node: Node): boolean {
  if (typeof node.type !== 'string') return false
  if (ddlStatements.has(node.type) || node.type === 'select') return true
  return dataStatements.has(node.type) && 'table' in node
}

/** Walks any part of the tree: expressions, FROM lists, subqueries. Tables met here are read. */
function walkNode(node: unknown, scope: Scope, acc: AccessCollector): void {
  if (Array.isArray(node)) {
    for (const item of node) walkNode(item, scope, acc)
    return
  }
  if (!isNode(node)) return
  if (isNode(node.ast)) {
    walkStatement(node.ast, scope, acc)
    return
  }
  if (isStatement(node)) {
    walkStatement(node, scope, acc)
    return
  }
  if (node.type === 'function' || node.type === 'aggr_func') {
    const name = functionName(node)
    if (!allowedSqlFunctions.has(name)) throw denied(`SQL function ${name}() is not allowed`)
  }
  if (isTableRef(node)) {
    acc.table(node, 'read', scope)
    if (typeof node.table === 'string' && ['only', 'lateral'].includes(node.table.toLowerCase())) {
      // The parser reads `FROM ONLY users` as table "only" aliased "users": refuse rather than guess.
      throw denied(`"${node.table}" cannot be used as a table name`)
    }
  }
  for (const [key, value] of Object.entries(node)) {
    if (!ignoredKeys.has(key)) walkNode(value, scope, acc)
  }
}

/** Walks every key of `node` but the ones listed, as read access. */
function walkRest(node: Node, skip: readonly string[], scope: Scope, acc: AccessCollector): void {
  for (const [key, value] of Object.entries(node)) {
    if (!skip.includes(key) && !ignoredKeys.has(key)) walkNode(value, scope, acc)
  }
}

/** Adds the CTEs of a WITH clause to the scope, walking each definition with the names visible to it. */
function withScope(withClause: unknown, scope: Scope, acc: AccessCollector): Scope {
  if (!Array.isArray(withClause)) return scope
  const visible = new Set(scope)
  for (const cte of withClause) {
    if (!isNode(cte) || !isNode(cte.name) || typeof cte.name.value !== 'string') {
      throw denied('a WITH clause could not be analysed')
    }
    const name = acc.fold(cte.name.value)
    // SQLite resolves a CTE's reference to itself to the CTE; PostgreSQL only under RECURSIVE
    // (otherwise the name means the real table, which then needs its grant).
    const selfVisible = acc.dialect === 'sqlite' || cte.recursive === true
    walkNode(cte.stmt, selfVisible ? new Set([...visible, name]) : new Set(visible), acc)
    walkNode(cte.columns, visible, acc)
    visible.add(name)
  }
  return visible
}

function tableRefs(value: unknown, what: string): Node[] {
  const refs = Array.isArray(value) ? value : [value]
  if (refs.length === 0 || !refs.every((r) => isNode(r) && isTableRef(r))) {
    throw denied(`the ${what} of the statement could not be analysed`)
  }
  return refs as Node[]
}

function walkStatement(stmt: Node, outer: Scope, acc: AccessCollector): void {
  const type = String(stmt.type)
  const scope = withScope(stmt.with, outer, acc)
  switch (type) {
    case 'select': {
      if (isNode(stmt.into) && stmt.into.expr !== undefined && stmt.into.expr !== null) {
        throw denied('SELECT INTO creates a table; use CREATE TABLE … AS in your own tables')
      }
      walkRest(stmt, ['with'], scope, acc)
      return
    }
    case 'insert':
    case 'replace':
    case 'update': {
      const targets = tableRefs(stmt.table, 'target table')
      const names = targets.map((t) => acc.table(t, 'write', scope))
      if (stmt.returning !== null && stmt.returning !== undefined) {
        for (const t of targets) acc.table(t, 'read', scope)
      }
      if (names.includes(undefined)) throw denied('a CTE cannot be the target of a write')
      walkRest(stmt, ['with', 'table'], scope, acc)
      return
    }
    case 'delete': {
      const targets = tableRefs(stmt.table, 'target table')
      const names = new Set(targets.map((t) => acc.table(t, 'write', scope)))
      if (names.has(undefined)) throw denied('a CTE cannot be the target of a write')
      if (stmt.returning !== null && stmt.returning !== undefined) {
        for (const t of targets) acc.table(t, 'read', scope)
      }
      // SQLite's tree repeats the target in `from`; anything else there is read.
      const from = Array.isArray(stmt.from) ? stmt.from : []
      for (const entry of from) {
        if (isNode(entry) && isTableRef(entry) && names.has(acc.tableName(entry.db, entry.table as string))) {
          acc.seen.add(`${entry.db ?? 'null'}::${entry.table}`)
          continue
        }
        walkNode(entry, scope, acc)
      }
      walkRest(stmt, ['with', 'table', 'from'], scope, acc)
      return
    }
    case 'create':
      walkCreate(stmt, scope, acc)
      return
    case 'drop':
      walkDrop(stmt, scope, acc)
      return
    case 'alter':
      walkAlter(stmt, scope, acc)
      return
    default:
      throw denied(`${type.toUpperCase()} statements are not allowed`)
  }
}

function walkCreate(stmt: Node, scope: Scope, acc: AccessCollector): void {
  if (stmt.keyword === 'table') {
    // A temporary table lives on one connection: behind a pool (PostgreSQL) it would vanish
    // between calls, and on SQLite's one connection it would shadow the table of the same name.
    if (stmt.temporary !== null && stmt.temporary !== undefined)
      throw denied('temporary tables are not allowed')
    for (const t of tableRefs(stmt.table, 'table')) acc.table(t, 'ddl', new Set())
    walkRest(stmt, ['table', 'with'], scope, acc)
    return
  }
  if (stmt.keyword === 'index') {
    // PostgreSQL's tree names the index as a string, SQLite's as { schema, name }.
    const index = isNode(stmt.index)
      ? { db: stmt.index.schema, table: stmt.index.name }
      : { db: null, table: stmt.index }
    if (typeof index.table !== 'string') throw denied('CREATE INDEX needs an index name')
    acc.ddl.add(acc.tableName(index.db, index.table))
    for (const t of tableRefs(stmt.table, 'table')) acc.table(t, 'ddl', new Set())
    walkRest(stmt, ['table', 'index', 'with'], scope, acc)
    return
  }
  // Views, triggers, functions and the rest run SQL later, out of sight of this check.
  throw denied(`CREATE ${String(stmt.keyword ?? '').toUpperCase()} is not allowed`)
}

function walkDrop(stmt: Node, scope: Scope, acc: AccessCollector): void {
  if (stmt.keyword === 'table') {
    for (const t of tableRefs(stmt.name, 'table')) acc.table(t, 'ddl', new Set())
    return
  }
  if (stmt.keyword === 'index') {
    const name = stmt.name
    const column =
      isNode(name) && isNode(name.column) && isNode(name.column.expr) ? name.column.expr.value : undefined
    if (typeof column !== 'string' || (isNode(name) && name.table !== null)) {
      throw denied('the index of DROP INDEX could not be analysed')
    }
    acc.ddl.add(acc.fold(column))
    walkRest(stmt, ['name'], scope, acc)
    return
  }
  throw denied(`DROP ${String(stmt.keyword ?? '').toUpperCase()} is not allowed`)
}

function walkAlter(stmt: Node, scope: Scope, acc: AccessCollector): void {
  if (stmt.keyword !== undefined && stmt.keyword !== 'table') {
    throw denied(`ALTER ${String(stmt.keyword).toUpperCase()} is not allowed`)
  }
  for (const t of tableRefs(stmt.table, 'table')) acc.table(t, 'ddl', new Set())
  const actions = Array.isArray(stmt.expr) ? stmt.expr : []
  for (const action of actions) {
    if (!isNode(action) || !['add', 'drop', 'rename'].includes(String(action.action))) {
      throw denied('only ADD, DROP and RENAME are allowed in ALTER TABLE')
    }
    if (action.action === 'rename' && action.resource === 'table') {
      // The new name becomes a table too: it must be one the plugin may own.
      if (typeof action.table !== 'string') throw denied('the new name of ALTER TABLE could not be analysed')
      acc.ddl.add(acc.fold(action.table))
    }
    walkRest(action, ['table'], scope, acc)
  }
}

/**
 * Parses one SQL statement in the backend's dialect and finds every table it reads, writes or
 * redefines, through CTEs, subqueries, joins, set operations and function arguments.
 *
 * Fails closed: SQL the parser cannot read, more than one statement, statement kinds other than
 * SELECT/INSERT/REPLACE/UPDATE/DELETE and CREATE/DROP/ALTER TABLE or INDEX, SQL functions outside
 * {@link allowedSqlFunctions}, and any table reference the walk could not place are refused.
 *
 * @example
 * analyzeSql('WITH t AS (SELECT * FROM stats_daily) SELECT * FROM t', 'sqlite')
 * // { statement: 'select', reads: ['stats_daily'], writes: [], ddl: [] }
 */
export function analyzeSql(sql: string, dialect: SqlDialect): SqlAccess {
  // Plugins send the same statements over and over with other parameters: the analysis is a pure
  // function of the text, so it is kept (most recently used last) for the next time.
  const key = `${dialect}\0${sql}`
  const cached = analysisCache.get(key)
  if (cached !== undefined) {
    analysisCache.delete(key)
    analysisCache.set(key, cached)
    return cached
  }
  const access = analyze(sql, dialect)
  analysisCache.set(key, access)
  if (analysisCache.size > analysisCacheSize)
    analysisCache.delete(analysisCache.keys().next().value as string)
  return access
}

const analysisCacheSize = 1000
const analysisCache = new Map<string, SqlAccess>()

/**
 * Spellings where the parser and a database may not cut the text into the same tokens: a
 * backslash (an escape to the parser, a plain character in standard SQL strings), a doubled `""`
 * inside a quoted identifier, and PostgreSQL's `U&"…"` Unicode escapes. If the two disagreed on
 * where a string ends, the database could run a table reference the check never saw; such SQL is
 * refused, and the values belong in bound parameters anyway.
 */
const ambiguousSpelling = /\\|""|u&["']/i

function analyze(sql: string, dialect: SqlDialect): SqlAccess {
  if (sql.length > maxSqlLength) {
    throw new PluginError('invalid_argument', `SQL is longer than ${maxSqlLength} characters`)
  }
  if (ambiguousSpelling.test(sql)) {
    throw new PluginError(
      'invalid_argument',
      'SQL with backslashes, doubled "" or U& escapes is refused (parsers disagree on it); bind the value as a parameter',
    )
  }
  if (nestingDepth(sql) > maxSqlNesting) {
    throw new PluginError('invalid_argument', `SQL nests parentheses more than ${maxSqlNesting} levels deep`)
  }
  let parsed: { tableList: string[]; ast: unknown }
  try {
    parsed = parser.parse(sql, { database: dialect }) as { tableList: string[]; ast: unknown }
  } catch (error) {
    const detail = error instanceof Error ? error.message.slice(0, 200) : String(error)
    throw new PluginError('invalid_argument', `SQL could not be parsed (${dialect}): ${detail}`)
  }
  const statements = Array.isArray(parsed.ast) ? parsed.ast : [parsed.ast]
  if (statements.length !== 1) {
    throw new PluginError('invalid_argument', `one SQL statement per call (found ${statements.length})`)
  }
  const stmt = statements[0]
  if (!isNode(stmt)) throw new PluginError('invalid_argument', 'SQL could not be parsed')
  const acc = new AccessCollector(dialect)
  walkStatement(stmt, new Set(), acc)
  // Every table the parser itself saw must have been placed by the walk: a shape of tree the walk
  // does not know must not hide a table.
  for (const entry of parsed.tableList) {
    const [, db, table] = entry.split('::')
    if (!acc.seen.has(`${db}::${table}`)) throw denied(`table ${table} could not be placed in the statement`)
  }
  return Object.freeze({
    statement: String(stmt.type),
    reads: Object.freeze([...acc.reads]),
    writes: Object.freeze([...acc.writes]),
    ddl: Object.freeze([...acc.ddl]),
  })
}
