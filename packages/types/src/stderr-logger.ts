import type { Logger } from './host-api.js'

/** The host's stderr, declared here so that `@corral/types` needs neither the DOM's nor Node's types. */
const stderr = (globalThis as unknown as { process: { stderr: { write(line: string): void } } }).process
  .stderr

/**
 * The one default logger of every Corral package: warnings and errors as JSON lines on stderr
 * (`{"level":"warn","message":"…","plugin":"…"}`), so a host's log collector reads them as it reads
 * its own.
 */
export const stderrLogger: Logger = {
  log(level, message, fields) {
    if (level !== 'warn' && level !== 'error') return
    stderr.write(`${JSON.stringify({ level, message, ...fields })}\n`)
  },
}
