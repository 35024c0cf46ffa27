import type { LogLevel } from '@corral/types'

const hclogLevels: Record<string, LogLevel> = {
  trace: 'trace',
  debug: 'debug',
  info: 'info',
  warn: 'warn',
  warning: 'warn',
  error: 'error',
}

/** One stderr line as the host logs it. */
export interface LogEntry {
  level: LogLevel
  message: string
  fields: Record<string, unknown>
}

/**
 * Reads one stderr line: an hclog JSON line (`@level`, `@message`, `@timestamp`, other keys are
 * fields) becomes that entry; anything else is logged as it is at `warn`. go-plugin logs such lines
 * at debug, but a plugin's plain stderr is mostly a panic, a stack trace or a runtime's complaint:
 * at debug, a host at its default level would show only that the process exited.
 */
export function parseHclogLine(line: string): LogEntry {
  if (line.startsWith('{')) {
    try {
      const value = JSON.parse(line) as Record<string, unknown>
      const {
        '@level': level,
        '@message': message,
        '@timestamp': _timestamp,
        '@module': module,
        ...fields
      } = value
      if (typeof message === 'string') {
        if (typeof module === 'string') fields.module = module
        return { level: hclogLevels[String(level).toLowerCase()] ?? 'info', message, fields }
      }
    } catch {
      // Not JSON after all: logged as text below.
    }
  }
  return { level: 'warn', message: line, fields: {} }
}

/**
 * What the host reads of one output stream of a plugin (stderr, forwarded stdout): lines of at most
 * 16 KiB, at most 200 a second.
 */
export const logLineLimits = { maxLineBytes: 16 * 1024, maxLinesPerSecond: 200 } as const

/** The window of `maxLinesPerSecond`. */
const rateWindowMs = 1000

/** Options of {@link LineReader}. */
export interface LineReaderOptions {
  /** A line longer than this many bytes is cut, the rest up to its newline dropped. */
  maxLineBytes: number
  /** At most this many lines a second reach `onLine`; the others are counted and reported. */
  maxLinesPerSecond: number
  onLine(line: string): void
  /** Called once a second while lines were dropped. */
  onDropped(count: number): void
}

/**
 * Splits a plugin's output into lines, bounded in memory and in rate, so that a plugin flooding its
 * stderr costs the host a read loop and nothing more.
 */
export class LineReader {
  readonly #options: LineReaderOptions
  #partial = ''
  #discarding = false
  #windowStart = 0
  #inWindow = 0
  #dropped = 0

  constructor(options: LineReaderOptions) {
    this.#options = options
  }

  push(chunk: Buffer): void {
    let text = chunk.toString('utf8')
    for (;;) {
      const newline = text.indexOf('\n')
      if (newline === -1) {
        if (!this.#discarding) {
          this.#partial += text
          if (this.#partial.length > this.#options.maxLineBytes) {
            this.#emit(`${this.#partial.slice(0, this.#options.maxLineBytes)}…`)
            this.#partial = ''
            this.#discarding = true
          }
        }
        return
      }
      const piece = text.slice(0, newline)
      text = text.slice(newline + 1)
      if (this.#discarding) {
        this.#discarding = false
        continue
      }
      const line = this.#partial + piece
      this.#partial = ''
      this.#emit(
        line.length > this.#options.maxLineBytes ? `${line.slice(0, this.#options.maxLineBytes)}…` : line,
      )
    }
  }

  /** Emits what is left without a newline, and the count of lines dropped. */
  end(): void {
    if (this.#partial !== '') this.#emit(this.#partial)
    this.#partial = ''
    this.#flushDropped()
  }

  #emit(line: string): void {
    const trimmed = line.endsWith('\r') ? line.slice(0, -1) : line
    if (trimmed === '') return
    const now = Date.now()
    if (now - this.#windowStart >= rateWindowMs) {
      this.#flushDropped()
      this.#windowStart = now
      this.#inWindow = 0
    }
    if (this.#inWindow >= this.#options.maxLinesPerSecond) {
      this.#dropped++
      return
    }
    this.#inWindow++
    this.#options.onLine(trimmed)
  }

  #flushDropped(): void {
    if (this.#dropped > 0) this.#options.onDropped(this.#dropped)
    this.#dropped = 0
  }
}
