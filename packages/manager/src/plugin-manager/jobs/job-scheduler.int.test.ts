/**
 * The job scheduler on real databases: an SQLite file and the PostgreSQL server of the global
 * set-up. Jobs run on real time (six-field, every-second schedules); the plugin call is a function
 * of the test, standing where the manager's call goes.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { JobSpec, LogLevel } from '@corral/types'
import { PluginError } from '@corral/types'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createPostgresDatabase } from '../../backends/postgres-database.js'
import type { SqlDatabase } from '../../backends/sql-database.js'
import { createSqliteDatabase } from '../../backends/sqlite-database.js'
import { freshPostgresDatabase } from '../../testing/backend-sets.js'
import type { ManagerEvent } from '../manager-api.js'
import { createJobScheduler, type JobSchedulerOptions, type MutableJobScheduler } from './job-scheduler.js'

type Call = JobSchedulerOptions['call']
type JobArgs = { job: string; scheduled_at: string }

const everySecond = '* * * * * *'

function job(id: string, fields: Partial<JobSpec> = {}): JobSpec {
  return { id, cron: everySecond, handler: 'run', enabled: true, ...fields }
}

async function waitFor(what: string, condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

describe.each(['sqlite', 'postgresql'] as const)('createJobScheduler on %s', (dialect) => {
  let dir: string
  let url: string
  const databases: SqlDatabase[] = []
  const schedulers: MutableJobScheduler[] = []

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'corral-jobs-'))
    if (dialect === 'postgresql') url = await freshPostgresDatabase('jobs')
  })
  afterEach(async () => {
    await Promise.all(schedulers.splice(0).map((s) => s.close()))
    await Promise.all(databases.splice(0).map((d) => d.close()))
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  /** A new connection to the suite's database (the same data every time). */
  async function openDatabase(): Promise<SqlDatabase> {
    const database =
      dialect === 'sqlite'
        ? createSqliteDatabase({ path: join(dir, 'jobs.db') })
        : await createPostgresDatabase({ url })
    databases.push(database)
    return database
  }

  function open(database: SqlDatabase, call: Call, replicaId?: string) {
    const results: Extract<ManagerEvent, { type: 'job.result' }>[] = []
    const logs: { level: LogLevel; message: string }[] = []
    const scheduler = createJobScheduler({
      database,
      call,
      onResult: (event) => results.push(event),
      logger: { log: (level, message) => logs.push({ level, message }) },
      ...(replicaId === undefined ? {} : { replicaId }),
    })
    schedulers.push(scheduler)
    return { scheduler, results, logs }
  }

  it('runs a job on its schedule with the job id and the scheduled time, and records each run', async () => {
    const calls: { plugin: string; fn: string; args: JobArgs }[] = []
    const { scheduler, results } = open(await openDatabase(), async (plugin, fn, args) => {
      calls.push({ plugin, fn, args: args as JobArgs })
    })
    await scheduler.put('ticker', [job('beat', { handler: 'onBeat' })], 5_000)
    expect(scheduler.list()).toEqual([
      expect.objectContaining({
        plugin: 'ticker',
        id: 'beat',
        handler: 'onBeat',
        timeoutMs: 5_000,
        enabled: true,
        running: false,
        nextRunAt: expect.any(Number),
      }),
    ])
    await waitFor('two runs', () => results.length >= 2)
    expect(calls[0]).toMatchObject({ plugin: 'ticker', fn: 'onBeat', args: { job: 'beat' } })
    // Whole seconds, one per run: the time the run was due, not when it fired.
    expect(calls[0]?.args.scheduled_at).toMatch(/:\d\d\.000Z$/)
    expect(new Set(calls.map((c) => c.args.scheduled_at)).size).toBe(calls.length)
    expect(results[0]).toMatchObject({ type: 'job.result', plugin: 'ticker', job: 'beat', ok: true })
    expect(scheduler.list()[0]?.lastRun).toMatchObject({ ok: true })
  })

  it('aborts a run at its timeout, capped by the call timeout, and records deadline_exceeded', async () => {
    const signals: AbortSignal[] = []
    const database = await openDatabase()
    const { scheduler, results } = open(database, (_plugin, fn, _args, { signal }) => {
      signals.push(signal)
      // `honours` ends when aborted; `ignores` never ends: the scheduler must not wait for it.
      return fn === 'honours'
        ? new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)))
        : new Promise(() => {})
    })
    await scheduler.put(
      'slowpoke',
      [
        job('own', { cron: '0 0 1 1 *', handler: 'honours', timeout: 200 }),
        job('capped', { cron: '0 0 1 1 *', handler: 'ignores', timeout: 60_000 }),
      ],
      300,
    )
    expect(scheduler.list().map((j) => j.timeoutMs)).toEqual([200, 300])
    const own = await scheduler.runNow('slowpoke', 'own')
    expect(own).toMatchObject({ ok: false, error: { code: 'deadline_exceeded', plugin: 'slowpoke' } })
    expect(signals[0]?.aborted).toBe(true)
    const capped = await scheduler.runNow('slowpoke', 'capped')
    expect(capped).toMatchObject({ ok: false, error: { code: 'deadline_exceeded' } })
    expect(results.map((r) => `${r.job} ${r.ok} ${r.error?.code}`)).toEqual([
      'own false deadline_exceeded',
      'capped false deadline_exceeded',
    ])
    // The last run is in the database: a new scheduler on another connection shows it.
    const again = open(await openDatabase(), async () => {})
    await again.scheduler.put('slowpoke', [job('own', { cron: '0 0 1 1 *' })], 300)
    expect(again.scheduler.list()[0]?.lastRun).toEqual(own)
  })

  it('never overlaps a job with itself: a run due while the last one goes on is skipped and said', async () => {
    let active = 0
    let most = 0
    const { scheduler, logs } = open(await openDatabase(), async () => {
      active += 1
      most = Math.max(most, active)
      await sleep(2_500)
      active -= 1
    })
    await scheduler.put('overlap', [job('slow')], 10_000)
    await waitFor('a run going on', () => scheduler.list()[0]?.running === true)
    await expect(scheduler.runNow('overlap', 'slow')).rejects.toMatchObject({ code: 'unavailable' })
    await waitFor('two skipped runs', () => (scheduler.list()[0]?.skippedRuns ?? 0) >= 2)
    expect(most).toBe(1)
    expect(logs).toContainEqual({
      level: 'warn',
      message: expect.stringMatching(/job slow skipped its run of .* still going on this replica/),
    })
  })

  it('keeps enable and disable in the database: a new scheduler on it runs only the enabled jobs, shows no next run of a disabled one', async () => {
    const first = open(await openDatabase(), async () => {})
    const specs = [job('on-by-default'), job('off-by-default', { enabled: false })]
    await first.scheduler.put('toggle', specs, 5_000)
    await first.scheduler.setEnabled('toggle', 'on-by-default', false)
    await first.scheduler.close()

    const calls: string[] = []
    const second = open(await openDatabase(), async (_plugin, _fn, args) => {
      calls.push((args as JobArgs).job)
    })
    await second.scheduler.put('toggle', specs, 5_000)
    expect(second.scheduler.list().map((j) => `${j.id} ${j.enabled}`)).toEqual([
      'on-by-default false',
      'off-by-default false',
    ])
    // A disabled job has no next run to show.
    expect(second.scheduler.list().map((j) => j.nextRunAt)).toEqual([undefined, undefined])
    await sleep(2_200)
    expect(calls).toEqual([])
    // An administrator may still run a disabled job by hand.
    expect(await second.scheduler.runNow('toggle', 'on-by-default')).toMatchObject({ ok: true })
    await second.scheduler.setEnabled('toggle', 'off-by-default', true)
    expect(second.scheduler.list()[1]?.nextRunAt).toEqual(expect.any(Number))
    await waitFor('a scheduled run of the enabled job', () => calls.includes('off-by-default'))
    expect(calls.filter((id) => id === 'on-by-default')).toEqual(['on-by-default'])
    await expect(second.scheduler.setEnabled('toggle', 'nope', true)).rejects.toMatchObject({
      code: 'not_found',
    })
  })

  it('runs a job now and resolves with its result, a failure with the plugin’s error code', async () => {
    let fail = false
    const { scheduler, results } = open(await openDatabase(), async () => {
      if (fail) throw new PluginError('manual:no_data', 'nothing to roll up', { plugin: 'manual' })
      return { rolled: 3 }
    })
    await scheduler.put('manual', [job('rollup', { cron: '0 0 1 1 *' })], 5_000)
    expect(await scheduler.runNow('manual', 'rollup')).toMatchObject({ ok: true, at: expect.any(Number) })
    fail = true
    expect(await scheduler.runNow('manual', 'rollup')).toMatchObject({
      ok: false,
      error: { code: 'manual:no_data' },
    })
    expect(results.map((r) => r.ok)).toEqual([true, false])
    await expect(scheduler.runNow('manual', 'nope')).rejects.toMatchObject({ code: 'not_found' })
  })

  it('does not run the jobs of a removed plugin, and aborts its run going on', async () => {
    const calls: string[] = []
    const { scheduler } = open(await openDatabase(), (_plugin, fn, _args, { signal }) => {
      calls.push(fn)
      return fn === 'wait'
        ? new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)))
        : Promise.resolve()
    })
    await scheduler.put(
      'gone',
      [job('tick', { handler: 'tick' }), job('long', { cron: '0 0 1 1 *', handler: 'wait' })],
      60_000,
    )
    const long = scheduler.runNow('gone', 'long')
    await waitFor('the long run', () => calls.includes('wait'))
    scheduler.remove('gone')
    expect(await long).toMatchObject({ ok: false, error: { code: 'canceled' } })
    const before = calls.length
    await sleep(2_200)
    expect(calls.length).toBe(before)
    expect(scheduler.list()).toEqual([])
    await expect(scheduler.runNow('gone', 'tick')).rejects.toMatchObject({ code: 'not_found' })
  })

  it('refuses a bad cron expression or a repeated job id and keeps the jobs it had', async () => {
    const { scheduler } = open(await openDatabase(), async () => {})
    await scheduler.put('strict', [job('a', { cron: '0 0 1 1 *' })], 5_000)
    await expect(scheduler.put('strict', [job('b', { cron: '61 * * * *' })], 5_000)).rejects.toMatchObject({
      code: 'invalid_argument',
      message: expect.stringContaining('job b has a bad cron expression'),
    })
    await expect(scheduler.put('strict', [job('c'), job('c')], 5_000)).rejects.toMatchObject({
      code: 'invalid_argument',
    })
    expect(scheduler.list().map((j) => j.id)).toEqual(['a'])
  })
})

describe('createJobScheduler on two replicas sharing PostgreSQL', () => {
  const databases: SqlDatabase[] = []
  const schedulers: MutableJobScheduler[] = []
  afterAll(async () => {
    await Promise.all(schedulers.map((s) => s.close()))
    await Promise.all(databases.map((d) => d.close()))
  })

  it('runs each scheduled time once in total', async () => {
    const url = await freshPostgresDatabase('jobs_replicas')
    const runs: { replica: string; at: string }[] = []
    const replica = async (name: string) => {
      const database = await createPostgresDatabase({ url })
      databases.push(database)
      const scheduler = createJobScheduler({
        database,
        replicaId: name,
        logger: { log: () => {} },
        onResult: () => {},
        call: async (_plugin, _fn, args) => {
          runs.push({ replica: name, at: (args as JobArgs).scheduled_at })
          await sleep(50)
        },
      })
      schedulers.push(scheduler)
      return scheduler
    }
    const [a, b] = await Promise.all([replica('a'), replica('b')])
    await Promise.all([a.put('shared', [job('beat')], 5_000), b.put('shared', [job('beat')], 5_000)])
    await waitFor('six runs', () => runs.length >= 6, 15_000)
    await Promise.all([a.close(), b.close()])
    const times = runs.map((r) => r.at)
    expect(new Set(times).size).toBe(times.length)
  })
})
