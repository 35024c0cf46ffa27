import { afterAll, describe, expect, it } from 'vitest'
import { createSqliteDatabase } from './sqlite-database.js'

describe('createSqliteDatabase', () => {
  const db = createSqliteDatabase()
  afterAll(() => db.close())

  it('binds $1, $2 … from the parameter list, in any order', async () => {
    await db.exec('CREATE TABLE t (a TEXT, b INTEGER)', [])
    expect(await db.exec('INSERT INTO t (b, a) VALUES ($2, $1)', ['x', 1])).toBe(1)
    expect(await db.query('SELECT a, b FROM t WHERE a = $1', ['x'])).toEqual([{ a: 'x', b: 1 }])
  })

  it('returns blobs as base64 and booleans as integers', async () => {
    await db.exec('CREATE TABLE blobs (v BLOB, f INTEGER)', [])
    await db.exec("INSERT INTO blobs VALUES (x'0102ff', $1)", [true])
    expect(await db.query('SELECT v, f FROM blobs', [])).toEqual([{ v: 'AQL/', f: 1 }])
  })

  it('refuses a writing statement that was checked as a read', async () => {
    await expect(db.query('DELETE FROM t', [], { readOnly: true })).rejects.toMatchObject({
      code: 'permission_denied',
    })
    expect(await db.query('SELECT count(*) AS n FROM t', [])).toEqual([{ n: 1 }])
  })

  it('reports SQL errors as invalid_argument', async () => {
    await expect(db.query('SELECT * FROM missing', [])).rejects.toMatchObject({ code: 'invalid_argument' })
  })
})
