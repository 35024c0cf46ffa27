import { spawn } from 'node:child_process'
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
 * wraps (same run): what a permission check, rate limit, argument validation, metrics and the
 * deadline timer add to one host call. A plugin's SQLite statement runs in an executor process
 * (so that it can be stopped at its deadline): `baseline.process.pipe` is the bare round trip to a
 * child process over the executors' framing, which this adds (`baseline.process.ipc`, Node's IPC
 * channel, for comparison).
 */
export default async function hostApi(report: BenchReport): Promise<void> {
  const value = Buffer.alloc(100, 'x')
  const bareCache = createMemoryCache()
  await bareCache.set('bench', 'key', value)
  report.add(
    'baseline.cache.memory_get',
    await measureLatency(() => bareCache.get('bench', 'key'), { iterations: 50_000 }),
  )

  const backends = await createBackends({ databaseUrl: '', redisUrl: '' })
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
  report.add(
    'hostapi.cache_get',
    await measureLatency(() => call('cache.get', { key: 'key' }, context), { iterations: 50_000 }),
    { baseline: 'baseline.cache.memory_get' },
  )

  const sql = 'SELECT day, hits FROM bench_daily WHERE day = $1'
  const raw = new Database(':memory:')
  for (const db of [raw]) {
    db.exec('CREATE TABLE bench_daily (day TEXT PRIMARY KEY, hits INTEGER)')
    db.exec("INSERT INTO bench_daily VALUES ('2026-11-21', 5)")
  }
  await backends.database.exec('CREATE TABLE bench_daily (day TEXT PRIMARY KEY, hits INTEGER)', [])
  await backends.database.exec("INSERT INTO bench_daily VALUES ('2026-11-21', 5)", [])
  report.add(
    'baseline.sqlite.query',
    await measureLatency(() => raw.prepare(sql).all({ 1: '2026-11-21' }), { iterations: 20_000 }),
  )
  report.add('baseline.process.ipc', await measureIpcRoundTrip())
  report.add('baseline.process.pipe', await measurePipeRoundTrip())
  report.add(
    'hostapi.db_query',
    await measureLatency(() => call('db.query', { sql, args: ['2026-11-21'] }, context), {
      iterations: 20_000,
    }),
    { baseline: 'baseline.sqlite.query' },
  )
  raw.close()
  await backends.close()
}

/** The message the process round trips carry: about what an executor gets. */
const roundTripMessage = {
  id: 1,
  sql: 'SELECT day, hits FROM bench_daily WHERE day = $1',
  params: ['2026-11-21'],
}

/** One message to a child process and its echo, over Node's IPC channel. */
async function measureIpcRoundTrip() {
  const child = spawn(process.execPath, ['-e', "process.on('message', (m) => process.send(m))"], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    serialization: 'json',
  })
  let answer: (() => void) | undefined
  child.on('message', () => answer?.())
  try {
    return await measureLatency(
      () =>
        new Promise<void>((resolve) => {
          answer = resolve
          child.send(roundTripMessage)
        }),
      { iterations: 20_000 },
    )
  } finally {
    child.kill()
  }
}

/**
 * One frame to a child process and its echo, the way the SQLite executors talk: a 4-byte length
 * and JSON, on the child's stdin and stdout; the child blocks on its input and parses what it gets.
 */
async function measurePipeRoundTrip() {
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
  const json = JSON.stringify(JSON.parse(body.toString('utf8', 0, length)))
  const frame = Buffer.allocUnsafe(4 + Buffer.byteLength(json))
  frame.writeUInt32LE(frame.length - 4, 0)
  frame.write(json, 4)
  writeSync(1, frame)
}`
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
  try {
    return await measureLatency(
      () =>
        new Promise<void>((resolve) => {
          answer = resolve
          const json = JSON.stringify(roundTripMessage)
          const frame = Buffer.allocUnsafe(4 + Buffer.byteLength(json))
          frame.writeUInt32LE(frame.length - 4, 0)
          frame.write(json, 4)
          child.stdin.write(frame)
        }),
      { iterations: 20_000 },
    )
  } finally {
    child.kill()
  }
}
