/**
 * The job scheduler: runs the cron jobs of plugins' registrations. Each job has a timeout (its own,
 * capped by the plugin's call timeout) at which its call is aborted; it never overlaps itself; its
 * administrator's switch and last run live in the host's database (`corral_jobs`), so they survive
 * a restart and are shared by replicas.
 *
 * One row per job is also its lease: a run starts only after one conditional UPDATE of that row
 * moved `claimed_for` forward to the run's scheduled time while no run held `busy_until`. Replicas
 * sharing a database race on that UPDATE and exactly one wins (PostgreSQL re-checks the condition
 * on the row a concurrent winner committed; SQLite has one writer), so each scheduled time runs
 * once in total, and a run still going on one replica makes the others skip theirs. A database
 * lock, no election.
 */
import { randomUUID } from 'node:crypto'
import type { JobSpec, Logger, PluginErrorData } from '@corral/types'
import { PluginError } from '@corral/types'
import { Cron } from 'croner'
import type { SqlDatabase } from '../../backends/sql-database.js'
import type { JobInfo, JobScheduler, ManagerEvent } from '../manager-api.js'

/** What a job run ends with. */
export type JobRun = NonNullable<JobInfo['lastRun']>

/** Options of {@link createJobScheduler}. */
export interface JobSchedulerOptions {
  /** Where job settings, last runs and leases live (`corral_jobs`, created if missing). */
  database: SqlDatabase
  /** Calls the plugin's handler; must honour `signal` (aborted at the job's timeout or at `close`). */
  call(
    plugin: string,
    fn: string,
    args: unknown,
    opts: { timeoutMs: number; signal: AbortSignal },
  ): Promise<unknown>
  /** Told of every run's end, scheduled or run now. */
  onResult(event: Extract<ManagerEvent, { type: 'job.result' }>): void
  logger: Logger
  /** This replica's name in the scheduler's log lines. Default: a random id. */
  replicaId?: string
  /** Epoch milliseconds, for run times and leases. Default `Date.now`. */
  now?: () => number
}

/** The scheduler as the manager drives it, one plugin's jobs at a time. */
export interface MutableJobScheduler extends JobScheduler {
  /**
   * Schedules `plugin`'s jobs, replacing those it had (a run still going goes on, and the new
   * schedule does not overlap it). Throws `invalid_argument` for a bad cron expression or a
   * repeated job id, and then changes nothing.
   */
  put(plugin: string, jobs: JobSpec[], callTimeoutMs: number): Promise<void>
  /** Unschedules `plugin`'s jobs and aborts its runs still going. */
  remove(plugin: string): void
  /** Unschedules every job, aborts the runs still going and waits for them to be recorded. */
  close(): Promise<void>
}

/** After a run's timeout, how long its lease still holds: time to record the result. */
const leaseGraceMs = 5_000

/** The tables, once per database. */
const migrations = new WeakMap<SqlDatabase, Promise<void>>()

function migrateJobTables(database: SqlDatabase): Promise<void> {
  let done = migrations.get(database)
  if (done === undefined) {
    const ddl =
      'CREATE TABLE IF NOT EXISTS corral_jobs (plugin TEXT NOT NULL, job TEXT NOT NULL, enabled INTEGER, ' +
      'claimed_for BIGINT NOT NULL DEFAULT 0, lease TEXT, busy_until BIGINT NOT NULL DEFAULT 0, ' +
      'last_at BIGINT, last_ok INTEGER, last_duration_ms BIGINT, last_error TEXT, PRIMARY KEY (plugin, job))'
    // Two replicas starting at once can both try to create the table; on PostgreSQL the loser gets a
    // unique violation in pg_type instead of "already exists", and its second try sees the table.
    done = database.exec(ddl, []).then(
      () => undefined,
      () => database.exec(ddl, []).then(() => undefined),
    )
    done.catch(() => migrations.delete(database))
    migrations.set(database, done)
  }
  return done
}

/** One scheduled job of a plugin, as the current registration has it. */
interface ScheduledJob {
  plugin: string
  spec: JobSpec
  timeoutMs: number
  cron: Cron
  /** The administrator's switch as last read or set here (the database decides each run). */
  enabled: boolean
  lastRun: JobRun | undefined
  skippedRuns: number
}

/** A run in progress on this replica: survives a `put` of the same plugin. */
interface RunningJob {
  controller: AbortController
  done: Promise<JobRun | undefined>
}

const keyOf = (plugin: string, job: string) => `${plugin}\u0000${job}`

/**
 * Creates the scheduler. Cron expressions have five fields, or six with seconds first (what croner
 * reads; the manifest checks them with croner too), and are read in UTC, so replicas in different
 * time zones agree on every scheduled time.
 *
 * @example
 * const jobs = createJobScheduler({ database: backends.database, call, onResult, logger })
 * await jobs.put('stats', registration.jobs, 5_000)
 * await jobs.runNow('stats', 'rollup')     // { at, ok, durationMs, error? }
 */
export function createJobScheduler(options: JobSchedulerOptions): MutableJobScheduler {
  const { database, logger } = options
  const now = options.now ?? Date.now
  const replicaId = options.replicaId ?? randomUUID()
  const jobs = new Map<string, Map<string, ScheduledJob>>()
  const running = new Map<string, RunningJob>()
  /** Bumped by every put and remove of a plugin, so a put overtaken while it waited gives way. */
  const versions = new Map<string, number>()
  let closed = false

  const current = (plugin: string, job: string) => jobs.get(plugin)?.get(job)
  const isCurrent = (scheduled: ScheduledJob) => current(scheduled.plugin, scheduled.spec.id) === scheduled
  const fields = (scheduled: ScheduledJob) => ({
    plugin: scheduled.plugin,
    job: scheduled.spec.id,
    replica: replicaId,
  })

  function refuseWhenClosed(): void {
    if (closed) throw new PluginError('unavailable', 'the job scheduler is closed')
  }

  function find(plugin: string, job: string): ScheduledJob {
    const scheduled = current(plugin, job)
    if (scheduled === undefined)
      throw new PluginError('not_found', `plugin ${plugin} has no job ${job}`, { plugin })
    return scheduled
  }

  function skip(scheduled: ScheduledJob, scheduledAt: number, where: string): void {
    scheduled.skippedRuns += 1
    logger.log(
      'warn',
      `job ${scheduled.spec.id} skipped its run of ${new Date(scheduledAt).toISOString()}: the previous run is still going ${where}`,
      fields(scheduled),
    )
  }

  /** Takes the job's lease for one run: for a scheduled time (moving `claimed_for`) or for a run now. */
  async function claim(
    scheduled: ScheduledJob,
    lease: string,
    scheduledAt: number | undefined,
  ): Promise<boolean> {
    const at = now()
    const params = [scheduled.plugin, scheduled.spec.id, lease, at + scheduled.timeoutMs + leaseGraceMs, at]
    const changed =
      scheduledAt === undefined
        ? await database.exec(
            'UPDATE corral_jobs SET lease = $3, busy_until = $4 WHERE plugin = $1 AND job = $2 AND busy_until < $5',
            params,
          )
        : await database.exec(
            'UPDATE corral_jobs SET lease = $3, busy_until = $4, claimed_for = $6 WHERE plugin = $1 AND job = $2 ' +
              'AND busy_until < $5 AND claimed_for < $6 AND COALESCE(enabled, $7) = 1',
            [...params, scheduledAt, scheduled.spec.enabled ? 1 : 0],
          )
    return changed === 1
  }

  /** Why a scheduled run was not claimed: disabled, or still running elsewhere (said), or another replica's. */
  async function explainUnclaimed(scheduled: ScheduledJob, scheduledAt: number): Promise<void> {
    const [row] = await database.query(
      'SELECT enabled, claimed_for, busy_until FROM corral_jobs WHERE plugin = $1 AND job = $2',
      [scheduled.plugin, scheduled.spec.id],
    )
    if (row === undefined) return
    scheduled.enabled = row.enabled === null ? scheduled.spec.enabled : Number(row.enabled) === 1
    if (scheduled.enabled && Number(row.claimed_for) < scheduledAt && Number(row.busy_until) >= now()) {
      skip(scheduled, scheduledAt, 'on another replica')
    }
  }

  async function onSchedule(scheduled: ScheduledJob, scheduledAt: number): Promise<void> {
    const key = keyOf(scheduled.plugin, scheduled.spec.id)
    if (closed || !isCurrent(scheduled)) return
    if (running.has(key)) return skip(scheduled, scheduledAt, 'on this replica')
    const lease = randomUUID()
    // Reserved before the first await, so a second firing meanwhile sees it.
    const reservation = reserve(key)
    try {
      if (!(await claim(scheduled, lease, scheduledAt))) {
        await explainUnclaimed(scheduled, scheduledAt)
        return reservation.cancel()
      }
      scheduled.enabled = true
      // A remove while the claim was on its way: give the lease back and do not run.
      if (closed || !isCurrent(scheduled)) {
        await release(scheduled, lease)
        return reservation.cancel()
      }
    } catch (error) {
      logger.log(
        'error',
        `job ${scheduled.spec.id} could not be claimed: ${(error as Error).message}`,
        fields(scheduled),
      )
      return reservation.cancel()
    }
    await reservation.run(() => execute(scheduled, lease, scheduledAt, reservation.controller))
  }

  /** Marks a job running on this replica; `run` records the run, `cancel` gives the mark back. */
  function reserve(key: string) {
    const controller = new AbortController()
    let settle: (run: JobRun | undefined) => void = () => {}
    const done = new Promise<JobRun | undefined>((resolve) => {
      settle = resolve
    })
    running.set(key, { controller, done })
    const finish = (run: JobRun | undefined) => {
      if (running.get(key)?.done === done) running.delete(key)
      settle(run)
    }
    return {
      controller,
      cancel: () => finish(undefined),
      async run(work: () => Promise<JobRun>): Promise<JobRun> {
        let run: JobRun | undefined
        try {
          run = await work()
          return run
        } finally {
          finish(run)
        }
      },
    }
  }

  async function release(scheduled: ScheduledJob, lease: string): Promise<void> {
    await database.exec(
      'UPDATE corral_jobs SET busy_until = 0 WHERE plugin = $1 AND job = $2 AND lease = $3',
      [scheduled.plugin, scheduled.spec.id, lease],
    )
  }

  /** Calls the handler until it ends or the timeout (or close) aborts it, then records the run. */
  async function execute(
    scheduled: ScheduledJob,
    lease: string,
    scheduledAt: number,
    controller: AbortController,
  ): Promise<JobRun> {
    const { plugin, spec, timeoutMs } = scheduled
    const startedAt = now()
    const startedMs = performance.now()
    const timer = setTimeout(
      () =>
        controller.abort(
          new PluginError('deadline_exceeded', `job ${spec.id} ran past its timeout of ${timeoutMs} ms`, {
            plugin,
          }),
        ),
      timeoutMs,
    )
    // The run ends at the abort even if the call does not honour its signal.
    const aborted = new Promise<never>((_, reject) => {
      controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true })
    })
    aborted.catch(() => {})
    let error: PluginErrorData | undefined
    try {
      await Promise.race([
        options.call(
          plugin,
          spec.handler,
          { job: spec.id, scheduled_at: new Date(scheduledAt).toISOString() },
          {
            timeoutMs,
            signal: controller.signal,
          },
        ),
        aborted,
      ])
    } catch (reason) {
      error = PluginError.from(reason, 'plugin_error', plugin).toData()
    } finally {
      clearTimeout(timer)
    }
    const run: JobRun = {
      at: startedAt,
      ok: error === undefined,
      durationMs: Math.round(performance.now() - startedMs),
    }
    if (error !== undefined) run.error = error
    // The plugin may have been put again meanwhile: the job as it is now shows the run.
    const shown = current(plugin, spec.id) ?? scheduled
    shown.lastRun = run
    try {
      await database.exec(
        'UPDATE corral_jobs SET last_at = $3, last_ok = $4, last_duration_ms = $5, last_error = $6, ' +
          'busy_until = CASE WHEN lease = $7 THEN 0 ELSE busy_until END WHERE plugin = $1 AND job = $2',
        [
          plugin,
          spec.id,
          run.at,
          run.ok ? 1 : 0,
          run.durationMs,
          error === undefined ? null : JSON.stringify(error),
          lease,
        ],
      )
    } catch (reason) {
      logger.log(
        'error',
        `job ${spec.id}'s run could not be recorded: ${(reason as Error).message}`,
        fields(scheduled),
      )
    }
    if (!run.ok)
      logger.log('warn', `job ${spec.id} failed: ${error?.message}`, {
        ...fields(scheduled),
        code: error?.code,
      })
    try {
      options.onResult({
        type: 'job.result',
        plugin,
        job: spec.id,
        ok: run.ok,
        durationMs: run.durationMs,
        ...(error === undefined ? {} : { error }),
        at: now(),
      })
    } catch (reason) {
      logger.log('error', `a job.result listener failed: ${(reason as Error).message}`, fields(scheduled))
    }
    return run
  }

  function unschedule(plugin: string): void {
    for (const scheduled of jobs.get(plugin)?.values() ?? []) scheduled.cron.stop()
    jobs.delete(plugin)
    versions.set(plugin, (versions.get(plugin) ?? 0) + 1)
  }

  function abortRuns(plugin: string | undefined, reason: PluginError): void {
    for (const [key, run] of running) {
      if (plugin === undefined || key.startsWith(`${plugin}\u0000`)) run.controller.abort(reason)
    }
  }

  return {
    async put(plugin, specs, callTimeoutMs) {
      refuseWhenClosed()
      const version = (versions.get(plugin) ?? 0) + 1
      versions.set(plugin, version)
      const next = new Map<string, ScheduledJob>()
      try {
        for (const spec of specs) {
          if (next.has(spec.id))
            throw new PluginError('invalid_argument', `job ${spec.id} is declared twice`, { plugin })
          let cron: Cron
          try {
            cron = new Cron(spec.cron, { timezone: 'UTC', unref: true })
          } catch (error) {
            throw new PluginError(
              'invalid_argument',
              `job ${spec.id} has a bad cron expression "${spec.cron}": ${(error as Error).message}`,
              { plugin, cause: error },
            )
          }
          next.set(spec.id, {
            plugin,
            spec: { ...spec },
            timeoutMs: Math.min(spec.timeout ?? callTimeoutMs, callTimeoutMs),
            cron,
            enabled: spec.enabled,
            lastRun: undefined,
            skippedRuns: current(plugin, spec.id)?.skippedRuns ?? 0,
          })
        }
        await migrateJobTables(database)
        for (const id of next.keys()) {
          await database.exec(
            'INSERT INTO corral_jobs (plugin, job) VALUES ($1, $2) ON CONFLICT (plugin, job) DO NOTHING',
            [plugin, id],
          )
        }
        const rows = await database.query(
          'SELECT job, enabled, last_at, last_ok, last_duration_ms, last_error FROM corral_jobs WHERE plugin = $1',
          [plugin],
        )
        for (const row of rows) {
          const scheduled = next.get(String(row.job))
          if (scheduled === undefined) continue
          if (row.enabled !== null) scheduled.enabled = Number(row.enabled) === 1
          if (row.last_at !== null) {
            scheduled.lastRun = {
              at: Number(row.last_at),
              ok: Number(row.last_ok) === 1,
              durationMs: Number(row.last_duration_ms),
            }
            if (row.last_error !== null)
              scheduled.lastRun.error = JSON.parse(String(row.last_error)) as PluginErrorData
          }
        }
      } catch (error) {
        for (const scheduled of next.values()) scheduled.cron.stop()
        throw PluginError.from(error, 'unavailable', plugin)
      }
      // Removed, put again or closed while this put waited for the database: that call wins.
      if (closed || versions.get(plugin) !== version) {
        for (const scheduled of next.values()) scheduled.cron.stop()
        return
      }
      for (const scheduled of jobs.get(plugin)?.values() ?? []) scheduled.cron.stop()
      jobs.set(plugin, next)
      for (const scheduled of next.values()) {
        scheduled.cron.schedule((cron) => {
          // croner passes the time it fired at, not the time it was due: the latest match is the scheduled time.
          const due = cron.previousRuns(1, new Date())[0]?.getTime() ?? Math.floor(Date.now() / 1000) * 1000
          void onSchedule(scheduled, due)
        })
      }
    },
    remove(plugin) {
      unschedule(plugin)
      abortRuns(plugin, new PluginError('canceled', `plugin ${plugin} was unloaded`, { plugin }))
    },
    async close() {
      closed = true
      for (const plugin of [...jobs.keys()]) unschedule(plugin)
      abortRuns(undefined, new PluginError('canceled', 'the job scheduler is closing'))
      await Promise.all([...running.values()].map((run) => run.done))
    },
    list() {
      return [...jobs.values()].flatMap((byId) =>
        [...byId.values()].map((scheduled) => {
          const info: JobInfo = {
            plugin: scheduled.plugin,
            id: scheduled.spec.id,
            cron: scheduled.spec.cron,
            handler: scheduled.spec.handler,
            timeoutMs: scheduled.timeoutMs,
            enabled: scheduled.enabled,
            running: running.has(keyOf(scheduled.plugin, scheduled.spec.id)),
            skippedRuns: scheduled.skippedRuns,
          }
          const next = scheduled.cron.nextRun()
          // A disabled job has no next run (its schedule still ticks, to no effect).
          if (next !== null && scheduled.enabled) info.nextRunAt = next.getTime()
          if (scheduled.lastRun !== undefined) info.lastRun = scheduled.lastRun
          return info
        }),
      )
    },
    async setEnabled(plugin, job, enabled) {
      refuseWhenClosed()
      const scheduled = find(plugin, job)
      await migrateJobTables(database)
      await database.exec('UPDATE corral_jobs SET enabled = $3 WHERE plugin = $1 AND job = $2', [
        plugin,
        job,
        enabled ? 1 : 0,
      ])
      scheduled.enabled = enabled
    },
    async runNow(plugin, job) {
      refuseWhenClosed()
      const scheduled = find(plugin, job)
      const key = keyOf(plugin, job)
      const busy = () => new PluginError('unavailable', `job ${job} is running already`, { plugin })
      if (running.has(key)) throw busy()
      const lease = randomUUID()
      const reservation = reserve(key)
      try {
        if (!(await claim(scheduled, lease, undefined))) throw busy()
      } catch (error) {
        reservation.cancel()
        throw PluginError.from(error, 'unavailable', plugin)
      }
      return reservation.run(() => execute(scheduled, lease, now(), reservation.controller))
    },
  }
}
