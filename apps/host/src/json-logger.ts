import type { Logger, LogLevel } from '@corral/types'

const rank: Record<LogLevel, number> = { trace: 0, debug: 1, info: 2, warn: 3, error: 4 }

/** Structured logs: one JSON object a line on stdout, from `minLevel` up. */
export function createJsonLogger(
  minLevel: LogLevel,
  write: (line: string) => void = (line) => process.stdout.write(line),
): Logger {
  return {
    log(level, message, fields = {}) {
      if (rank[level] < rank[minLevel]) return
      write(`${JSON.stringify({ time: new Date().toISOString(), level, message, ...fields })}\n`)
    },
  }
}

/**
 * Options for fastify's logger (pino) that write lines of {@link createJsonLogger}'s shape —
 * `time` in ISO form, `level` by name, the text under `message`, no pid or hostname — so that the
 * host's log lines and its plugin manager's read alike.
 */
export function fastifyLoggerOptions(level: LogLevel, stream?: { write(line: string): void }) {
  return {
    level,
    messageKey: 'message',
    base: null,
    timestamp: () => `,"time":"${new Date().toISOString()}"`,
    formatters: { level: (label: string) => ({ level: label }) },
    ...(stream === undefined ? {} : { stream }),
  }
}
