import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { SqlDatabase } from './sql-database.js'
import { createSqliteDatabase } from './sqlite-database.js'

/** Minutes of work for SQLite if nothing stops it. */
const runaway =
  'WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 1000000000) SELECT count(*) AS c FROM r'

describe('createSqliteDatabase: statements with a deadline, in executor processes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'corral-sqlite-test-'))
  let db: SqlDatabase

  beforeAll(async () => {
    db = createSqliteDatabase({ path: join(dir, 'data.db'), maxExecutors: 2 })
    await db.exec('CREATE TABLE t (a TEXT, b INTEGER)', [])
    await db.exec("INSERT INTO t VALUES ('x', 1)", [])
  })
  afterAll(async () => {
    await db.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it("runs them on the host's file and returns rows and changes", async () => {
    expect(await db.query('SELECT a, b FROM t WHERE b = $1', [1], { timeoutMs: 5000 })).toEqual([
      { a: 'x', b: 1 },
    ])
    expect(await db.exec("INSERT INTO t VALUES ('y', $1)", [2], { timeoutMs: 5000 })).toBe(1)
    expect(await db.query('SELECT count(*) AS n FROM t', [])).toEqual([{ n: 2 }])
  })

  it('refuses there a writing statement that was checked as a read', async () => {
    await expect(db.query('DELETE FROM t', [], { readOnly: true, timeoutMs: 5000 })).rejects.toMatchObject({
      code: 'permission_denied',
    })
    expect(await db.query('SELECT count(*) AS n FROM t', [])).toEqual([{ n: 2 }])
  })

  it('commits a write only when keep() says so, and drops it otherwise', async () => {
    await expect(
      db.exec("INSERT INTO t VALUES ('dropped', 3)", [], { timeoutMs: 5000, keep: () => false }),
    ).rejects.toMatchObject({ code: 'deadline_exceeded' })
    expect(await db.exec("INSERT INTO t VALUES ('kept', 4)", [], { timeoutMs: 5000, keep: () => true })).toBe(
      1,
    )
    expect(await db.query('SELECT a FROM t WHERE b > 2', [])).toEqual([{ a: 'kept' }])
  })

  it('fails a statement still waiting for a free executor at its deadline', async () => {
    const busy = [db.query(runaway, [], { timeoutMs: 1500 }), db.query(runaway, [], { timeoutMs: 1500 })]
    // Both executors are taken: this one waits in line and gives up at its own deadline.
    await expect(db.query('SELECT 1 AS one', [], { timeoutMs: 200 })).rejects.toMatchObject({
      code: 'deadline_exceeded',
    })
    for (const statement of busy) await expect(statement).rejects.toMatchObject({ code: 'deadline_exceeded' })
    expect(await db.query('SELECT 1 AS one', [], { timeoutMs: 5000 })).toEqual([{ one: 1 }])
  })

  it("serves every owner's first statement, however busy another owner keeps the executors", async () => {
    const small = createSqliteDatabase({ path: join(dir, 'data.db'), maxExecutors: 1 })
    let hogDone = false
    const hog = small.query(runaway, [], { timeoutMs: 3000, owner: 'hog' }).finally(() => {
      hogDone = true
    })
    // The hog's second statement waits for its first (the pool is full) and gives up at its deadline…
    await expect(small.query('SELECT 1 AS one', [], { timeoutMs: 300, owner: 'hog' })).rejects.toMatchObject({
      code: 'deadline_exceeded',
    })
    // …while another owner's statement runs at once, on one more executor.
    expect(
      await small.query('SELECT count(*) AS n FROM t', [], { timeoutMs: 5000, owner: 'polite' }),
    ).toEqual([{ n: 3 }])
    expect(hogDone).toBe(false)
    await expect(hog).rejects.toMatchObject({ code: 'deadline_exceeded' })
    await small.close()
  })

  it('stops reading at the first row past maxRows', async () => {
    const endless =
      'WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 1000000000) SELECT n FROM r'
    // Reading every row would take minutes: the deadline would come first, not this refusal.
    await expect(db.query(endless, [], { timeoutMs: 20_000, maxRows: 100 })).rejects.toMatchObject({
      code: 'resource_exhausted',
    })
    expect(await db.query('SELECT a FROM t WHERE b = $1', [1], { timeoutMs: 5000, maxRows: 1 })).toEqual([
      { a: 'x' },
    ])
  })

  it('counts the rows a write returns when only its changes are asked for', async () => {
    expect(
      await db.exec("INSERT INTO t (a, b) VALUES ('r1', 10), ('r2', 11) RETURNING a", [], {
        timeoutMs: 5000,
      }),
    ).toBe(2)
    expect(await db.exec('DELETE FROM t WHERE b >= 10', [], { timeoutMs: 5000 })).toBe(2)
  })

  it('reports SQL errors from an executor as invalid_argument', async () => {
    await expect(db.query('SELECT * FROM missing', [], { timeoutMs: 5000 })).rejects.toMatchObject({
      code: 'invalid_argument',
    })
  })

  it('fails statements with unavailable when no executor can start', async () => {
    const lost = join(dir, 'lost.db')
    const broken = createSqliteDatabase({ path: lost })
    // The host's connection keeps the file open; an executor, opening it by name, cannot.
    rmSync(lost)
    await expect(broken.query('SELECT 1 AS one', [], { timeoutMs: 10_000 })).rejects.toMatchObject({
      code: 'unavailable',
    })
    await broken.close()
  })

  it('stops a running statement on close, and removes the file of a :memory: database', async () => {
    const memory = createSqliteDatabase()
    await memory.exec('CREATE TABLE m (v)', [])
    const stopped = expect(memory.query(runaway, [], { timeoutMs: 60_000 })).rejects.toMatchObject({
      code: 'unavailable',
    })
    await new Promise((resolve) => setTimeout(resolve, 200))
    const [file] = (await memory.query('PRAGMA database_list', [])) as { file: string }[]
    await memory.close()
    await stopped
    expect(file?.file).toContain('corral-sqlite-')
    expect(existsSync(file?.file ?? '')).toBe(false)
  })
})
