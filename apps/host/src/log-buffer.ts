import type { Logger, LogLevel } from '@corral/types'

export interface LogEntry {
  at: number
  level: LogLevel
  message: string
  fields: Record<string, unknown>
}

/** The last log lines of the host and its plugins, for the admin's live log view. */
export interface LogBuffer {
  /** Where the manager and the plugins' `log` host calls write; every line also goes to `next`. */
  readonly logger: Logger
  /** Oldest first. */
  entries(filter?: { plugin?: string }): LogEntry[]
  /** Calls `listener` on each new line; returns the function that stops it. */
  onEntry(listener: (entry: LogEntry) => void): () => void
}

export function createLogBuffer(next: Logger, size = 500): LogBuffer {
  const entries: LogEntry[] = []
  const listeners = new Set<(entry: LogEntry) => void>()
  return {
    logger: {
      log(level, message, fields = {}) {
        next.log(level, message, fields)
        const entry = { at: Date.now(), level, message, fields }
        entries.push(entry)
        if (entries.length > size) entries.shift()
        for (const listener of listeners) listener(entry)
      },
    },
    entries: (filter = {}) =>
      filter.plugin === undefined ? [...entries] : entries.filter((e) => e.fields.plugin === filter.plugin),
    onEntry(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
  }
}
