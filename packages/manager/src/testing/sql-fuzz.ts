/**
 * Random SQL over a schema with secret tables, for the differential runs of the grants suite: a
 * seeded generator (the same seed gives the same statements) of reads, writes and DDL that mix
 * granted and secret tables through subqueries, CTEs, joins, set operations, table-valued
 * functions and every spelling of a name.
 */

/** A table the generator may name, and its columns. */
export interface FuzzTable {
  name: string
  columns: readonly string[]
}

/** What the generator draws from. */
export interface FuzzSchema {
  tables: readonly FuzzTable[]
  /** Tables a statement may write (granted or not). */
  writable: readonly FuzzTable[]
  /** FROM items other than tables: table-valued functions and the like. */
  sources: readonly string[]
  /** Scalar functions of one argument. */
  functions: readonly string[]
  /** How a table name may be qualified (`''` for not at all). */
  qualifiers: readonly string[]
}

/** A small seeded generator (mulberry32). */
function randomFrom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** `count` random statements from `seed`. */
export function randomStatements(schema: FuzzSchema, seed: number, count: number): string[] {
  const random = randomFrom(seed)
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T
  const chance = (p: number) => random() < p
  let owned = 0

  const spelling = (name: string) =>
    `${pick(schema.qualifiers)}${pick([name, `"${name}"`, name.toUpperCase(), name])}`

  function expr(table: FuzzTable | undefined, depth: number): string {
    const choice = random()
    if (depth > 2 || choice < 0.25) return pick(["'x'", '1', 'NULL', "'2026-11-20'", 'CURRENT_TIMESTAMP'])
    if (choice < 0.5 && table !== undefined) return pick(table.columns)
    if (choice < 0.65) return `${pick(schema.functions)}(${expr(table, depth + 1)})`
    if (choice < 0.8) {
      const inner = pick(schema.tables)
      return `(SELECT ${pick(inner.columns)} FROM ${spelling(inner.name)} LIMIT 1)`
    }
    if (choice < 0.9) return `EXISTS (${select(depth + 1)})`
    return `coalesce(${expr(table, depth + 1)}, ${expr(table, depth + 1)})`
  }

  function select(depth: number): string {
    const choice = random()
    if (choice < 0.15) return `SELECT * FROM ${pick(schema.sources)}`
    if (choice < 0.3 && depth < 2) return `WITH t AS (${select(depth + 1)}) SELECT * FROM t`
    const table = pick(schema.tables)
    let sql = `SELECT ${chance(0.4) ? '*' : expr(table, depth + 1)} FROM ${spelling(table.name)}`
    if (chance(0.2)) {
      const other = pick(schema.tables)
      sql += ` JOIN ${spelling(other.name)} ON 1 = 1`
    }
    if (chance(0.3)) sql += ` WHERE ${expr(table, depth + 1)} IS NOT NULL`
    if (chance(0.15) && depth < 2) sql += ` UNION ALL ${select(depth + 1)}`
    return sql
  }

  function statement(): string {
    const choice = random()
    const target = pick(schema.writable)
    const column = pick(target.columns)
    if (choice < 0.45) return select(0)
    if (choice < 0.55) return `INSERT INTO ${spelling(target.name)} (${column}) SELECT ${expr(undefined, 1)}`
    if (choice < 0.65) return `UPDATE ${spelling(target.name)} SET ${column} = ${expr(target, 1)}`
    if (choice < 0.72) return `DELETE FROM ${spelling(target.name)} WHERE ${expr(target, 1)} IS NOT NULL`
    if (choice < 0.8) return `CREATE TABLE fuzz_${owned++} AS ${select(1)}`
    if (choice < 0.86)
      return `INSERT INTO ${spelling(target.name)} (${column}) VALUES (${expr(undefined, 1)}) RETURNING *`
    if (choice < 0.92) return `DROP TABLE ${spelling(pick(schema.tables).name)}`
    return `ALTER TABLE ${spelling(pick(schema.tables).name)} RENAME TO fuzz_${owned++}`
  }

  return Array.from({ length: count }, statement)
}
