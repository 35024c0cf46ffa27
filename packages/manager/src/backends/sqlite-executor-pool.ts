import { type ChildProcessByStdio, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import type { Socket } from 'node:net'
import type { Readable, Writable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { PluginError } from '@corral/types'
import type { SqlPrincipal, SqlValue } from './sql-database.js'
import {
  type ExecutorReply,
  type ExecutorRequest,
  encodeFrame,
  FrameReader,
  maxFrameBytes,
} from './sqlite-executor-protocol.js'

/**
 * The executor's file: `sqlite-executor.js` beside this module once built. Run from the TypeScript
 * sources (the package's own tests), it is the bundle in `dist/`, which the build makes first.
 */
function executorFile(): string {
  const here = import.meta.url
  return fileURLToPath(
    new URL(here.endsWith('.ts') ? '../../dist/sqlite-executor.js' : './sqlite-executor.js', here),
  )
}

/**
 * util-linux's `prlimit`, which starts the executor under a limit on its writable memory
 * (RLIMIT_DATA; Node has no call to set one). Every Debian-like system has it; elsewhere the
 * executor runs with its JavaScript heap capped only.
 */
const prlimit = ['/usr/bin/prlimit', '/bin/prlimit'].find((file) => existsSync(file))

/**
 * An executor's writable memory: its JavaScript heap (256 MiB) and Node's own, and what SQLite may
 * allocate for a statement's values. A statement needing more fails with `resource_exhausted`.
 */
const executorDataBytes = 512 * 1024 * 1024

/** A statement for an executor, and what decides its fate. */
export interface ExecutorRun {
  sql: string
  params: readonly SqlValue[]
  readOnly: boolean
  /** Send back the rows it returns, or only count them. */
  returnRows: boolean
  /** Returned rows past this fail it with `resource_exhausted` (see `SqlRunOptions.maxRows`). */
  maxRows?: number
  /** Past this, the caller gets `deadline_exceeded` and the executor running it is killed. */
  timeoutMs: number
  /** Asked once a writing statement has run: `false` drops its changes (see `SqlRunOptions.keep`). */
  keep?: () => boolean
  /** Whose statement it is (see `SqlRunOptions.owner`). */
  owner?: string
  /** Run as this plugin, within its grant (see `SqlRunOptions.principal`). */
  principal?: SqlPrincipal
}

/** What a statement gave: its rows (if it returns any) and how many rows it changed. */
export interface ExecutorResult {
  rows: Record<string, unknown>[]
  changes: number
}

interface Job {
  id: number
  run: ExecutorRun
  resolve(result: ExecutorResult): void
  reject(error: PluginError): void
  timer: NodeJS.Timeout
  executor?: Executor
  /** A write that ran and is being committed: the result to give once the commit is done. */
  committing?: ExecutorResult
}

/** Statements without an owner count as one owner's. */
function ownerOf(job: Job): string {
  return job.run.owner ?? ''
}

interface Executor {
  child: ChildProcessByStdio<Writable, Readable, null>
  /** The executor's output, read as it comes: it keeps the host alive while a statement is in flight. */
  output: Socket
  ready: boolean
  job?: Job
  exited: Promise<void>
}

/** Options of {@link SqliteExecutorPool}. */
export interface SqliteExecutorPoolOptions {
  /** The database file (WAL mode), shared with the host's own connection. */
  path: string
  /** Where each plugin's own database lives (`<plugin>.sqlite`). */
  pluginsDir: string
  /**
   * The executor processes kept, each running one statement at a time. Default 4. An owner with no
   * statement running gets an executor even when all are busy (one more, stopped once idle).
   */
  maxExecutors?: number
  /**
   * The most bytes of JSON a statement's result may take; past it the statement fails with
   * `resource_exhausted` and its executor is stopped. Default 64 MiB.
   */
  maxResultBytes?: number
}

/**
 * Runs plugins' SQLite statements in child processes (`sqlite-executor.ts`), so that none of them
 * blocks the host's thread, and a statement still running at its deadline is stopped for real: its
 * process is killed (SQLite rolls back what it had not committed, and the OS drops its locks) and
 * the caller gets `deadline_exceeded` at once. Replacements start without waiting for anything;
 * one executor is kept started ahead of need. A statement that writes commits only once the pool,
 * on the host's thread, has confirmed that its caller is still waiting for it.
 */
export class SqliteExecutorPool {
  readonly #file = executorFile()
  readonly #path: string
  readonly #pluginsDir: string
  readonly #max: number
  readonly #maxResultBytes: number
  readonly #executors = new Set<Executor>()
  #waiting: Job[] = []
  #nextId = 1
  #closed = false
  /** The last executor started died before it was ready: start more only for statements that wait. */
  #failingToStart = false

  constructor(options: SqliteExecutorPoolOptions) {
    this.#path = options.path
    this.#pluginsDir = options.pluginsDir
    this.#max = Math.max(1, options.maxExecutors ?? 4)
    this.#maxResultBytes = options.maxResultBytes ?? maxFrameBytes
  }

  /** Runs one statement in an executor, within `run.timeoutMs` (waiting for a free executor included). */
  run(run: ExecutorRun): Promise<ExecutorResult> {
    if (this.#closed) return Promise.reject(new PluginError('unavailable', 'the database is closed'))
    return new Promise((resolve, reject) => {
      const job: Job = {
        id: this.#nextId++,
        run,
        resolve,
        reject,
        timer: setTimeout(() => this.#expire(job), Math.max(1, run.timeoutMs)),
      }
      // The common case: nothing waits before it, and an idle executor may take it at once.
      const executor = this.#waiting.length === 0 ? this.#idleFor(job) : undefined
      if (executor === undefined) this.#waiting.push(job)
      else this.#assign(executor, job)
      this.#dispatch()
    })
  }

  /**
   * An idle executor that `job` may have now, as {@link SqliteExecutorPool.#dispatch} would give it
   * were it the only one waiting: always if its owner has none running, else within the pool's size.
   */
  #idleFor(job: Job): Executor | undefined {
    let idle: Executor | undefined
    let busy = 0
    let ownerRunning = false
    for (const executor of this.#executors) {
      if (executor.job !== undefined) {
        busy++
        if (ownerOf(executor.job) === ownerOf(job)) ownerRunning = true
      } else if (executor.ready) idle ??= executor
    }
    return ownerRunning && busy >= this.#max ? undefined : idle
  }

  /** Stops every executor (a statement still running is rolled back) and refuses further work. */
  async close(): Promise<void> {
    this.#closed = true
    for (const job of this.#waiting.splice(0))
      this.#fail(job, new PluginError('unavailable', 'the database is closed'))
    const exits: Promise<void>[] = []
    for (const executor of [...this.#executors]) {
      if (executor.job !== undefined) {
        this.#fail(executor.job, new PluginError('unavailable', 'the database is closed'))
      }
      exits.push(executor.exited)
      this.#kill(executor)
    }
    await Promise.all(exits)
  }

  /**
   * Gives waiting jobs to idle executors and starts executors as needed. First come the statements
   * of owners with none running: each owner always gets one, beyond the pool's size if need be, so
   * that one plugin's runaway statements never hold up another's. Then the others, within the size.
   * Executors beyond the size are stopped once idle; one idle executor is kept ahead of need.
   */
  #dispatch(): void {
    if (this.#closed) return
    // The common case once a statement is done: nothing waits, nothing to stop, one ahead of need.
    if (this.#waiting.length === 0 && this.#executors.size <= this.#max && this.#hasSpare()) return
    const executors = [...this.#executors]
    const idle = executors.filter((e) => e.ready && e.job === undefined)
    let starting = executors.filter((e) => !e.ready).length
    let busy = 0
    const running = new Set<string>()
    for (const executor of executors) {
      if (executor.job === undefined) continue
      busy++
      running.add(ownerOf(executor.job))
    }
    // Owners served in the first pass: their next statements wait for the second.
    const served = new Set<string>()
    for (const first of [true, false]) {
      for (const job of [...this.#waiting]) {
        const owner = ownerOf(job)
        const hasOne = running.has(owner) || served.has(owner)
        if (first === hasOne) continue
        if (!first && busy >= this.#max) break
        served.add(owner)
        const executor = idle.shift()
        if (executor !== undefined) {
          this.#waiting.splice(this.#waiting.indexOf(job), 1)
          this.#assign(executor, job)
          busy++
        } else if (starting > 0) {
          // An executor on its way will take it.
          starting--
        } else if (first || this.#executors.size < this.#max) {
          this.#start()
        } else {
          break
        }
      }
    }
    if (this.#waiting.length > 0) return
    while (this.#executors.size > this.#max && idle.length > 0) this.#kill(idle.pop() as Executor)
    // One idle executor ahead of need: the next statement (or a killed one's successor) does not
    // wait for a process to start.
    const spare = idle.length + starting > 0
    if (!spare && this.#executors.size < this.#max && !this.#failingToStart) this.#start()
  }

  /** An executor is idle, or starting. */
  #hasSpare(): boolean {
    for (const executor of this.#executors) if (!executor.ready || executor.job === undefined) return true
    return false
  }

  #assign(executor: Executor, job: Job): void {
    executor.job = job
    job.executor = executor
    // A statement in flight keeps the host alive until it is answered (idle executors do not).
    executor.output.ref()
    const { sql, params, readOnly, returnRows, maxRows, principal } = job.run
    // Fields left undefined are not sent (JSON has no undefined).
    this.#send(executor, { kind: 'run', id: job.id, sql, params, readOnly, returnRows, maxRows, principal })
  }

  /** A write that fails (the executor died) is handled by the input's 'error' listener. */
  #send(executor: Executor, request: ExecutorRequest): void {
    executor.child.stdin.write(encodeFrame(request))
  }

  #start(): void {
    // Frames on plain pipes, not Node's IPC channel: the executor blocks on its input instead of
    // running an event loop, and a reply is one write and one read.
    // The executor's memory is capped: a plugin's huge statement fails, or kills its executor, and
    // never grows a process without bound. V8's flag caps the JavaScript heap; SQLite allocates
    // outside it (a value per column, in C), so the process's writable memory is capped too.
    const node = [process.execPath, '--max-old-space-size=256', this.#file, this.#path, this.#pluginsDir]
    const [command, ...args] =
      prlimit === undefined ? node : [prlimit, `--data=${executorDataBytes}`, '--', ...node]
    const child = spawn(command as string, args, { stdio: ['pipe', 'pipe', 'inherit'] })
    // spawn's pipes are sockets. Idle executors must not keep the host alive (a statement in flight
    // refs the output).
    const output = child.stdout as Socket
    child.unref()
    ;(child.stdin as Socket).unref()
    output.unref()
    let exited!: () => void
    const executor: Executor = { child, output, ready: false, exited: new Promise((r) => (exited = r)) }
    this.#executors.add(executor)
    const replies = new FrameReader(
      (reply) => this.#onReply(executor, reply as ExecutorReply),
      this.#maxResultBytes,
    )
    output.on('data', (chunk: Buffer) => {
      try {
        replies.push(chunk)
      } catch (error) {
        // A result over the limit, or a garbled reply: the executor is out of step.
        this.#drop(executor, error as PluginError)
      }
    })
    const broken = () => this.#drop(executor, new PluginError('unavailable', 'the SQLite executor failed'))
    child.stdin.on('error', broken)
    output.on('error', broken)
    child.on('error', () => {
      // A process that failed to start may never emit 'exit': close() must not wait for it.
      exited()
      this.#kill(executor)
    })
    child.once('exit', (code, signal) => {
      exited()
      if (!this.#executors.delete(executor)) return
      const reason = `the SQLite executor stopped (${signal ?? `exit code ${code}`})`
      if (executor.job !== undefined) this.#fail(executor.job, new PluginError('unavailable', reason))
      // One that never started will not start the next time either: do not spin.
      if (!executor.ready) {
        this.#failingToStart = true
        for (const job of this.#waiting.splice(0)) this.#fail(job, new PluginError('unavailable', reason))
      }
      this.#dispatch()
    })
  }

  #onReply(executor: Executor, reply: ExecutorReply): void {
    if (reply.kind === 'ready') {
      executor.ready = true
      this.#failingToStart = false
      this.#dispatch()
      return
    }
    const job = executor.job
    if (job === undefined || job.id !== reply.id) return
    switch (reply.kind) {
      case 'done':
        this.#release(executor)
        job.resolve({ rows: reply.rows, changes: reply.changes })
        return
      case 'ran':
        // Still wanted? The host API says no once it has answered the caller deadline_exceeded.
        if (job.run.keep?.() === false) {
          this.#expire(job)
          return
        }
        clearTimeout(job.timer)
        job.committing = { rows: reply.rows, changes: reply.changes }
        this.#send(executor, { kind: 'commit', id: job.id })
        return
      case 'committed':
        this.#release(executor)
        job.resolve(job.committing ?? { rows: [], changes: 0 })
        return
      case 'error':
        this.#release(executor)
        job.reject(new PluginError(reply.code, reply.message))
        return
    }
  }

  #release(executor: Executor): void {
    const job = executor.job
    if (job !== undefined) clearTimeout(job.timer)
    executor.job = undefined
    executor.output.unref()
    this.#dispatch()
  }

  /** The deadline passed: the caller is answered now, and the executor running it (if any) killed. */
  #expire(job: Job): void {
    const executor = job.executor
    const error = new PluginError('deadline_exceeded', 'the statement did not finish before the deadline')
    this.#fail(job, error)
    if (executor !== undefined) this.#kill(executor)
    this.#dispatch()
  }

  #fail(job: Job, error: PluginError): void {
    clearTimeout(job.timer)
    this.#waiting = this.#waiting.filter((j) => j !== job)
    if (job.executor?.job === job) job.executor.job = undefined
    job.reject(error)
  }

  /** Stops an executor that cannot go on; its statement fails with `error`. */
  #drop(executor: Executor, error: PluginError): void {
    if (executor.job !== undefined) this.#fail(executor.job, error)
    this.#kill(executor)
    this.#dispatch()
  }

  /** Stops an executor without waiting for it: a statement it runs dies with it, uncommitted. */
  #kill(executor: Executor): void {
    if (!this.#executors.delete(executor)) return
    if (executor.job !== undefined) {
      this.#fail(executor.job, new PluginError('unavailable', 'the SQLite executor failed'))
    }
    // Until it is gone (at once: SIGKILL), it keeps the host alive: close() waits for its exit.
    executor.child.ref()
    executor.child.kill('SIGKILL')
  }
}
