import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import Database from 'better-sqlite3'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { SqliteExecutorPool } from './sqlite-executor-pool.js'

/** Minutes of work for SQLite if nothing stops it. */
const runaway =
  'WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 1000000000) SELECT count(*) AS c FROM r'

/** The executor processes this process has started, from /proc. */
function executorPids(): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        const parent = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[1]
        const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
        return Number(parent) === process.pid && command.includes('sqlite-executor.js')
      } catch {
        // Gone meanwhile.
        return false
      }
    })
    .map(Number)
}

async function waitFor(what: string, check: () => boolean): Promise<void> {
  for (let tries = 0; !check(); tries++) {
    if (tries > 200) throw new Error(`${what} did not happen`)
    await sleep(25)
  }
}

describe('SqliteExecutorPool: the pipes to its executors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'corral-executor-pool-test-'))
  const path = join(dir, 'data.db')
  let pool: SqliteExecutorPool
  const run = (sql: string, params: (string | number)[] = [], timeoutMs = 10_000) =>
    pool.run({ sql, params, readOnly: false, returnRows: true, timeoutMs })

  beforeAll(() => {
    const db = new Database(path)
    db.pragma('journal_mode = WAL')
    db.exec("CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('x')")
    db.close()
  })
  afterEach(() => pool.close())
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('carries a request and a result each larger than a pipe takes at once', async () => {
    pool = new SqliteExecutorPool({ path, pluginsDir: join(dir, 'plugins'), maxExecutors: 1 })
    const big = 'é'.repeat(300_000)
    const { rows } = await run('SELECT $1 AS v, length($1) AS n', [big])
    expect(rows).toEqual([{ v: big, n: 300_000 }])
  })

  it('fails a result over its limit with resource_exhausted, and runs the next on a fresh executor', async () => {
    pool = new SqliteExecutorPool({
      path,
      pluginsDir: join(dir, 'plugins'),
      maxExecutors: 1,
      maxResultBytes: 1 << 20,
    })
    await run('SELECT 1')
    const [before] = executorPids()
    await expect(run('SELECT hex(randomblob(600000)) AS v')).rejects.toMatchObject({
      code: 'resource_exhausted',
    })
    expect((await run('SELECT v FROM t')).rows).toEqual([{ v: 'x' }])
    expect(executorPids()).not.toContain(before)
  })

  it('fails a statement that builds values past SQLite’s memory cap with resource_exhausted', async () => {
    pool = new SqliteExecutorPool({ path, pluginsDir: join(dir, 'plugins'), maxExecutors: 1 })
    await run('SELECT 1')
    const [executor] = executorPids()
    // Six values of 400 MB each, 2.4 GB in all without the cap.
    const columns = [0, 1, 2, 3, 4, 5]
    const hog = `SELECT ${columns.map((i) => `length(c${i})`).join(' + ')} AS n FROM (SELECT ${columns
      .map((i) => `randomblob(400000000) AS c${i}`)
      .join(', ')})`
    await expect(run(hog, [], 30_000)).rejects.toMatchObject({ code: 'resource_exhausted' })
    const residentKb = Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${executor}/status`, 'utf8'))?.[1])
    expect(residentKb).toBeLessThan(600 * 1024)
    expect((await run('SELECT v FROM t')).rows).toEqual([{ v: 'x' }])
  })

  it('fails the statement at once with unavailable when its executor is killed mid-statement', async () => {
    pool = new SqliteExecutorPool({ path, pluginsDir: join(dir, 'plugins'), maxExecutors: 1 })
    await run('SELECT 1')
    const [pid] = executorPids()
    const statement = run(runaway, [], 60_000)
    // Give the request time to reach the executor and the statement time to start.
    await sleep(200)
    process.kill(pid as number, 'SIGKILL')
    await expect(statement).rejects.toMatchObject({ code: 'unavailable' })
    expect((await run('SELECT v FROM t')).rows).toEqual([{ v: 'x' }])
  })

  it('replaces an executor that crashed while idle', async () => {
    pool = new SqliteExecutorPool({ path, pluginsDir: join(dir, 'plugins'), maxExecutors: 1 })
    await run('SELECT 1')
    const [crashed] = executorPids()
    process.kill(crashed as number, 'SIGKILL')
    await waitFor('a new executor', () => executorPids().some((pid) => pid !== crashed))
    expect((await run('SELECT v FROM t')).rows).toEqual([{ v: 'x' }])
  })
})
