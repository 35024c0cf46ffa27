import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  createBackends,
  createMemoryCache,
  createPolicyGrantLookup,
  createSandboxedHostApi,
  createSqlPolicyStore,
} from '@corral/manager'
import Database from 'better-sqlite3'
import type { BenchReport } from '../harness.js'
import { measureLatency } from '../harness.js'

/**
 * The sandboxed host API on the embedded backends, each row beside the bare backend operation it
 * wraps (in rounds): what a permission check, rate limit, argument validation, metrics and the
 * deadline timer add to one host call. A plugin's SQLite statement runs in an executor process
 * (so that it can be stopped at its deadline): `baseline.process.pipe` is the bare round trip to a
 * child process over the executors' framing, the floor of what this adds. The bare query runs on
 * the very database the plugin's statement reads: the backends' SQLite file, in WAL mode.
 */
export default async function hostApi(report: BenchReport): Promise<void> {
  const value = Buffer.alloc(100, 'x')
  const bareCache = createMemoryCache()
  await bareCache.set('bench', 'key', value)
  const dir = mkdtempSync(join(tmpdir(), 'corral-bench-'))
  const file = join(dir, 'corral.db')
  const backends = await createBackends({ databaseUrl: '', redisUrl: '', sqlitePath: file })
  const policies = createSqlPolicyStore(backends.database)
  const permissions = [
    { type: 'cache' as const, access: ['read' as const, 'write' as const], scope: ['*'] },
    { type: 'db' as const, access: ['read' as const], scope: ['bench_*'] },
  ]
  // As a manager holds it: one request object per loaded manifest.
  const request = { permissions }
  await policies.put({
    plugin: 'bench',
    status: 'approved',
    grants: permissions,
    rate_limits: { calls_per_second: 1e6, db_queries_per_minute: 1e7 },
  })
  const api = createSandboxedHostApi({
    backends,
    grants: createPolicyGrantLookup({ policies, requestOf: () => request }),
  })
  const call = api.forPlugin('bench')
  const context = { plugin: 'bench', token: 't' }
  await call('cache.set', { key: 'key', value: value.toString('base64') }, context)
  const latency = (fn: () => unknown, iterations: number) => () => measureLatency(fn, { iterations })
  await report.addInRounds([
    { name: 'baseline.cache.memory_get', measure: latency(() => bareCache.get('bench', 'key'), 8_000) },
    {
      name: 'hostapi.cache_get',
      measure: latency(() => call('cache.get', { key: 'key' }, context), 8_000),
      baseline: 'baseline.cache.memory_get',
    },
  ])

  const sql = 'SELECT day, hits FROM bench_daily WHERE day = $1'
  await backends.database.exec('CREATE TABLE bench_daily (day TEXT PRIMARY KEY, hits INTEGER)', [])
  await backends.database.exec("INSERT INTO bench_daily VALUES ('2026-11-21', 5)", [])
  // A connection of its own to the backends' file, set up as the host's is (createSqliteDatabase).
  const raw = new Database(file, { timeout: 0 })
  raw.pragma('journal_mode = WAL')
  raw.pragma('foreign_keys = ON')
  const bareQuery = () => raw.prepare(sql).all({ 1: '2026-11-21' })
  const query = () => call('db.query', { sql, args: ['2026-11-21'] }, context)
  const pipe = await startPipeEcho()
  try {
    // Every process up before the first round, not starting during it on a 2-core machine: the
    // echo child has answered (above), and two statements at once take two executors, so that the
    // one the pool keeps ahead of need is started now and not mid-round.
    await Promise.all([query(), query()])
    await report.addInRounds([
      { name: 'baseline.sqlite.query', measure: latency(bareQuery, 3_000) },
      { name: 'baseline.process.pipe', measure: latency(pipe.roundTrip, 3_000) },
      { name: 'hostapi.db_query', measure: latency(query, 3_000), baseline: 'baseline.sqlite.query' },
    ])
  } finally {
    pipe.close()
    raw.close()
    await backends.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * A child process echoing frames the way the SQLite executors talk: a 4-byte length and JSON, on
 * the child's stdin and stdout; the child blocks on its input and parses what it gets. Resolves
 * once the child has answered a first frame.
 */
async function startPipeEcho(): Promise<{ roundTrip(): Promise<void>; close(): void }> {
  const echo = `
const { readSync, writeSync } = require('node:fs')
const header = Buffer.alloc(4)
let body = Buffer.alloc(1 << 16)
function fill(buffer, length) {
  for (let got = 0; got < length; ) {
    const read = readSync(0, buffer, got, length - got)
    if (read === 0) process.exit(0)
    got += read
  }
}
for (;;) {
  fill(header, 4)
  const length = header.readUInt32LE(0)
  if (length > body.length) body = Buffer.alloc(length)
  fill(body, length)
  writeSync(1, frame(JSON.stringify(JSON.parse(body.toString('utf8', 0, length)))))
}
${frame.toString()}`
  // The child's script ends with `frame`'s own source: both ends frame alike, from one function.
  const child = spawn(process.execPath, ['-e', echo], { stdio: ['pipe', 'pipe', 'inherit'] })
  let answer: (() => void) | undefined
  let pending: Buffer = Buffer.alloc(0)
  child.stdout.on('data', (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
    while (pending.length >= 4 && pending.length >= 4 + pending.readUInt32LE(0)) {
      const end = 4 + pending.readUInt32LE(0)
      JSON.parse(pending.toString('utf8', 4, end))
      pending = pending.subarray(end)
      answer?.()
    }
  })
  const message = JSON.stringify({
    id: 1,
    sql: 'SELECT day, hits FROM bench_daily WHERE day = $1',
    params: ['2026-11-21'],
  })
  const roundTrip = () =>
    new Promise<void>((resolve) => {
      answer = resolve
      child.stdin.write(frame(message))
    })
  await roundTrip()
  return { roundTrip, close: () => child.kill() }
}

/** `json` as one frame: its UTF-8 length (4 bytes, little-endian), then its bytes. */
function frame(json: string): Buffer {
  const bytes = Buffer.allocUnsafe(4 + Buffer.byteLength(json))
  bytes.writeUInt32LE(bytes.length - 4, 0)
  bytes.write(json, 4)
  return bytes
}
