import type { Logger, LogLevel } from '@corral/types'

const rank: Record<LogLevel, number> = { trace: 0, debug: 1, info: 2, warn: 3, error: 4 }

/** Structured logs: one JSON object a line on stdout, from `minLevel` up. */
export function createJsonLogger(
  minLevel: LogLevel,
  write = (line: string) => process.stdout.write(line),
): Logger {
  return {
    log(level, message, fields = {}) {
      if (rank[level] < rank[minLevel]) return
      write(`${JSON.stringify({ time: new Date().toISOString(), level, message, ...fields })}\n`)
    },
  }
}
