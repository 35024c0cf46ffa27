import type { SupervisorClock } from '@corral/types'

/** A {@link SupervisorClock} that moves only when the test says: restart backoffs without real waits. */
export interface ManualClock extends SupervisorClock {
  /** Timers set and not yet run or cleared. */
  readonly pending: number
  /** Moves time on by `ms`, running every timer that falls due, in order. */
  advance(ms: number): void
}

interface Timer {
  at: number
  run: () => void
}

export function manualClock(start = 0): ManualClock {
  let now = start
  const timers = new Set<Timer>()
  return {
    now: () => now,
    setTimeout(run, ms) {
      const timer = { at: now + ms, run }
      timers.add(timer)
      return timer
    },
    clearTimeout(timer) {
      timers.delete(timer as Timer)
    },
    get pending() {
      return timers.size
    },
    advance(ms) {
      const until = now + ms
      for (;;) {
        const due = [...timers].filter((timer) => timer.at <= until).sort((a, b) => a.at - b.at)[0]
        if (due === undefined) break
        timers.delete(due)
        now = due.at
        due.run()
      }
      now = until
    },
  }
}
