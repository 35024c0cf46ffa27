import { setImmediate } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import type { RuntimeStateChange } from './plugin.js'
import {
  type RestartOptions,
  RestartSupervisor,
  type RestartTarget,
  type SupervisorClock,
} from './restart-supervisor.js'

/** A clock that moves only when told: timers run in order of their due time as it passes them. */
function fakeClock() {
  let now = 0
  let nextId = 0
  const timers = new Map<number, { at: number; run: () => void }>()
  /** The delay of every timer set, in order. */
  const delays: number[] = []
  const clock: SupervisorClock = {
    now: () => now,
    setTimeout(run, ms) {
      delays.push(ms)
      timers.set(++nextId, { at: now + ms, run })
      return nextId
    },
    clearTimeout(timer) {
      timers.delete(timer as number)
    },
  }
  /** Moves the clock by `ms`, running the timers due meanwhile and letting their work settle. */
  async function advance(ms: number): Promise<void> {
    const until = now + ms
    for (;;) {
      const due = [...timers].filter(([, t]) => t.at <= until).sort(([, a], [, b]) => a.at - b.at)[0]
      if (due === undefined) break
      timers.delete(due[0])
      now = due[1].at
      due[1].run()
      await setImmediate()
    }
    now = until
  }
  return { clock, delays, advance, pending: () => timers.size }
}

/** A target whose restarts succeed unless `failNext` says how many fail first. */
function fakeTarget() {
  const logs: Array<{ level: string; message: string }> = []
  const state = { restarts: 0, failNext: 0 }
  const target: RestartTarget = {
    async restart() {
      state.restarts += 1
      if (state.failNext > 0) {
        state.failNext -= 1
        throw new Error('no entry at build/plugin')
      }
    },
    log: (level, message) => logs.push({ level, message }),
  }
  return { target, logs, state }
}

const options: RestartOptions = {
  maxRestarts: 3,
  restartWindowMs: 1000,
  initialBackoffMs: 100,
  maxBackoffMs: 350,
}

function setUp(overrides: Partial<RestartOptions> = {}) {
  const time = fakeClock()
  const fake = fakeTarget()
  const supervisor = new RestartSupervisor(fake.target, { ...options, ...overrides }, time.clock)
  const changes: RuntimeStateChange[] = []
  supervisor.onStateChange((change) => changes.push(change))
  /** A crash, and the restart it leads to once its backoff has passed. */
  const crashAndRestart = async (reason = 'the process exited with code 7') => {
    supervisor.crashed(reason)
    await time.advance(options.maxBackoffMs)
  }
  return { ...time, ...fake, supervisor, changes, crashAndRestart }
}

describe('RestartSupervisor', () => {
  it('restarts after a backoff that doubles with each restart in the window, up to its cap', async () => {
    const { supervisor, delays, state, crashAndRestart } = setUp({ maxRestarts: 10, restartWindowMs: 60_000 })
    for (let i = 0; i < 4; i++) await crashAndRestart()
    expect(delays).toEqual([100, 200, 350, 350])
    expect(state.restarts).toBe(4)
    expect(supervisor.state).toBe('running')
  })

  it('waits out the backoff before it restarts', async () => {
    const { supervisor, advance, state } = setUp()
    supervisor.crashed('the process exited with code 7')
    expect(supervisor.state).toBe('restarting')
    await advance(99)
    expect(state.restarts).toBe(0)
    await advance(1)
    expect(state.restarts).toBe(1)
    expect(supervisor.state).toBe('running')
  })

  it('quarantines a plugin that crashes again after maxRestarts restarts within the window', async () => {
    const { supervisor, logs, state, pending, crashAndRestart } = setUp({ restartWindowMs: 10_000 })
    for (let i = 0; i < 3; i++) await crashAndRestart()
    supervisor.crashed('the process exited with code 7')
    expect(supervisor.state).toBe('quarantined')
    expect(state.restarts).toBe(3)
    expect(pending()).toBe(0)
    expect(logs.at(-1)).toEqual({
      level: 'error',
      message: 'quarantined: 3 restarts within 10000 ms; last: the process exited with code 7',
    })
    // A quarantined plugin is not restarted by further crash reports.
    supervisor.crashed('again')
    expect(supervisor.state).toBe('quarantined')
  })

  it('forgets restarts older than the window', async () => {
    const { supervisor, advance, delays, crashAndRestart } = setUp()
    for (let i = 0; i < 3; i++) await crashAndRestart()
    // The first restart was 1050 ms ago by the time of this crash: two remain in the window.
    await advance(1050 - 3 * options.maxBackoffMs)
    supervisor.crashed('the process exited with code 7')
    expect(supervisor.state).toBe('restarting')
    // The backoff counts only the restarts in the window: the third, as before.
    expect(delays.at(-1)).toBe(350)
  })

  it('counts a failed restart as a crash, and quarantines when restarts keep failing', async () => {
    const { supervisor, logs, state, advance, changes } = setUp({ maxRestarts: 2 })
    state.failNext = 10
    supervisor.crashed('the process exited with code 7')
    await advance(10_000)
    expect(state.restarts).toBe(2)
    expect(supervisor.state).toBe('quarantined')
    expect(logs.map((l) => l.message)).toEqual([
      'restarts in 100 ms: the process exited with code 7',
      'restarts in 200 ms: restart failed: no entry at build/plugin',
      'quarantined: 2 restarts within 1000 ms; last: restart failed: no entry at build/plugin',
    ])
    expect(changes.at(-1)?.reason).toBe(
      '2 restarts within 1000 ms; last: restart failed: no entry at build/plugin',
    )
  })

  it('reset lifts a quarantine: restarts at once and forgets the history', async () => {
    const { supervisor, state, delays, crashAndRestart } = setUp({ maxRestarts: 1 })
    await crashAndRestart()
    supervisor.crashed('the process exited with code 7')
    expect(supervisor.state).toBe('quarantined')
    await supervisor.reset()
    expect(supervisor.state).toBe('running')
    expect(state.restarts).toBe(2)
    // With the history forgotten, the next crash is a first restart again, not a quarantine.
    await crashAndRestart()
    expect(supervisor.state).toBe('running')
    expect(delays).toEqual([100, 100])
  })

  it('reset does nothing to a plugin that is not quarantined', async () => {
    const { supervisor, state, changes } = setUp()
    await supervisor.reset()
    expect(supervisor.state).toBe('running')
    expect(state.restarts).toBe(0)
    expect(changes).toEqual([])
  })

  it('stop cancels a pending restart, and later crashes are expected ones', async () => {
    const { supervisor, state, advance, pending } = setUp()
    supervisor.crashed('the process exited with code 7')
    supervisor.stop()
    expect(supervisor.state).toBe('stopping')
    expect(supervisor.stopping).toBe(true)
    expect(pending()).toBe(0)
    await advance(10_000)
    expect(state.restarts).toBe(0)
    supervisor.crashed('killed by SIGKILL')
    expect(supervisor.state).toBe('stopping')
    supervisor.stopped()
    expect(supervisor.state).toBe('stopped')
  })

  it('a restart that finishes after stop leaves the plugin stopping', async () => {
    const time = fakeClock()
    let finish: () => void = () => {}
    const target: RestartTarget = {
      restart: () => new Promise<void>((resolve) => (finish = resolve)),
      log: () => {},
    }
    const supervisor = new RestartSupervisor(target, options, time.clock)
    supervisor.crashed('the process exited with code 7')
    await time.advance(100)
    supervisor.stop()
    finish()
    await setImmediate()
    expect(supervisor.state).toBe('stopping')
  })

  it('tells every listener every transition, until it unsubscribes', async () => {
    const { supervisor, changes, crashAndRestart } = setUp({ maxRestarts: 1 })
    const second: RuntimeStateChange[] = []
    const unsubscribe = supervisor.onStateChange((change) => second.push(change))
    await crashAndRestart()
    supervisor.crashed('killed by SIGKILL')
    await supervisor.reset()
    unsubscribe()
    supervisor.stop()
    supervisor.stopped()
    expect(changes.map(({ from, to, reason }) => ({ from, to, reason }))).toEqual([
      { from: 'running', to: 'restarting', reason: 'the process exited with code 7' },
      { from: 'restarting', to: 'running', reason: 'restarted' },
      { from: 'running', to: 'quarantined', reason: '1 restarts within 1000 ms; last: killed by SIGKILL' },
      { from: 'quarantined', to: 'restarting', reason: 'reset by an administrator' },
      { from: 'restarting', to: 'running', reason: 'restarted' },
      { from: 'running', to: 'stopping', reason: 'shutdown' },
      { from: 'stopping', to: 'stopped', reason: 'shutdown' },
    ])
    // Stamped with the supervisor's clock: the restart ran when its 100 ms backoff was up.
    expect(changes[1]?.at).toBe(100)
    expect(second).toEqual(changes.slice(0, 5))
  })
})
