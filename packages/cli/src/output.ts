import type { Logger } from '@corral/types'
import { PluginError } from '@corral/types'
import picocolors from 'picocolors'
import yoctoSpinner from 'yocto-spinner'

/**
 * Whether to colour what goes to `stream`: as `FORCE_COLOR` says when it is set (it wins over
 * `NO_COLOR`, as in Node.js); else on a terminal, unless `NO_COLOR` is set. Not picocolors' own
 * choice, which also colours piped output wherever `CI` is set.
 */
export function colorsWanted(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.FORCE_COLOR !== undefined) return env.FORCE_COLOR !== '0' && env.FORCE_COLOR !== 'false'
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false
  return stream.isTTY === true && env.TERM !== 'dumb'
}

/** Colours for what is written to stdout. */
export const colors = picocolors.createColors(colorsWanted(process.stdout))
/** Colours for what is written to stderr. */
export const errorColors = picocolors.createColors(colorsWanted(process.stderr))

/** A JSON value as the CLI prints results: indented when a person reads it, one line when piped. */
export function formatJson(value: unknown): string {
  return JSON.stringify(value ?? null, null, process.stdout.isTTY ? 2 : undefined)
}

/**
 * A failure as the CLI prints it on stderr: `✗ [code] message`, then each field on its own line
 * unless the message already states it (a manifest's errors list theirs with their lines, a
 * plugin's invalid arguments name theirs inline).
 */
export function formatError(reason: unknown): string {
  const error = PluginError.from(reason, 'internal')
  const plugin = error.plugin === undefined ? '' : `${error.plugin}: `
  const lines = [
    `${errorColors.red('✗')} ${errorColors.bold(`[${error.code}]`)} ${plugin}${error.rawMessage}`,
  ]
  for (const field of error.fields) {
    const problem = `${field.field}: ${field.message}`
    if (error.rawMessage.includes(problem)) continue
    const where = field.line === undefined ? '' : `${field.line}:${field.column ?? 1} `
    lines.push(`  ${where}${problem}`)
  }
  if (error.retryAfterMs !== undefined) lines.push(`  retry after ${error.retryAfterMs} ms`)
  return lines.join('\n')
}

/**
 * The host's log lines on stderr: warnings and errors always, the rest with `--verbose` (a plugin's
 * stderr is logged by its runner as warnings, its stdout as info). A line's `reason` (why a plugin
 * changed state) or `error` follows its message.
 */
export function cliLogger(verbose: boolean): Logger {
  return {
    log(level, message, fields) {
      if (!verbose && level !== 'warn' && level !== 'error') return
      const plugin = typeof fields?.plugin === 'string' ? `${fields.plugin}: ` : ''
      const why = fields?.reason ?? fields?.error
      const detail = typeof why === 'string' && why !== '' ? `: ${why}` : ''
      const paint =
        level === 'error' ? errorColors.red : level === 'warn' ? errorColors.yellow : errorColors.dim
      process.stderr.write(`${paint(`${level} ${plugin}${message}${detail}`)}\n`)
    },
  }
}

/**
 * Runs a long step with a spinner on stderr, ending in ✓ or ✗ with the step's text; when stderr is
 * not a terminal, one line before and one after.
 */
export async function withProgress<T>(text: string, step: () => Promise<T>): Promise<T> {
  if (!process.stderr.isTTY) {
    process.stderr.write(`… ${text}\n`)
    const result = await step()
    process.stderr.write(`✓ ${text}\n`)
    return result
  }
  const spinner = yoctoSpinner({ text, stream: process.stderr }).start()
  try {
    const result = await step()
    spinner.success(text)
    return result
  } catch (error) {
    spinner.error(text)
    throw error
  }
}
