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
 * wraps (in rounds): what a permission check, rate limit, argument validation, metrics and the
 * deadline timer add to one host call. A plugin's SQLite statement runs in an executor process
 * (so that it can be stopped at its deadline): `baseline.process.ipc` is the bare round trip to a
 * child process that this adds.
 */
export default async function hostApi(report: BenchReport): Promise<void> {
  const value = Buffer.alloc(100, 'x')
  const bareCache = createMemoryCache()
  await bareCache.set('bench', 'key', value)
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
  const raw = new Database(':memory:')
  const ipc = startIpcEcho()
  try {
    raw.exec('CREATE TABLE bench_daily (day TEXT PRIMARY KEY, hits INTEGER)')
    raw.exec("INSERT INTO bench_daily VALUES ('2026-11-21', 5)")
    await backends.database.exec('CREATE TABLE bench_daily (day TEXT PRIMARY KEY, hits INTEGER)', [])
    await backends.database.exec("INSERT INTO bench_daily VALUES ('2026-11-21', 5)", [])
    await report.addInRounds([
      {
        name: 'baseline.sqlite.query',
        measure: latency(() => raw.prepare(sql).all({ 1: '2026-11-21' }), 3_000),
      },
      { name: 'baseline.process.ipc', measure: latency(ipc.roundTrip, 3_000) },
      {
        name: 'hostapi.db_query',
        measure: latency(() => call('db.query', { sql, args: ['2026-11-21'] }, context), 3_000),
        baseline: 'baseline.sqlite.query',
      },
    ])
  } finally {
    ipc.close()
    raw.close()
    await backends.close()
  }
}

/** A child process echoing each message over the IPC channel the SQLite executors use. */
function startIpcEcho(): { roundTrip(): Promise<void>; close(): void } {
  const child = spawn(process.execPath, ['-e', "process.on('message', (m) => process.send(m))"], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    serialization: 'json',
  })
  let answer: (() => void) | undefined
  child.on('message', () => answer?.())
  const message = { id: 1, sql: 'SELECT day, hits FROM bench_daily WHERE day = $1', params: ['2026-11-21'] }
  return {
    roundTrip: () =>
      new Promise<void>((resolve) => {
        answer = resolve
        child.send(message)
      }),
    close: () => child.kill(),
  }
}
