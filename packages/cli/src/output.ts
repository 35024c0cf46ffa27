import type { Logger } from '@corral/types'
import { PluginError } from '@corral/types'
import pc from 'picocolors'
import yoctoSpinner from 'yocto-spinner'

/** Colours for stdout and stderr: off when the stream is not a terminal or `NO_COLOR` is set (picocolors). */
export const colors = pc

/** A JSON value as the CLI prints results: indented when a person reads it, one line when piped. */
export function formatJson(value: unknown): string {
  return JSON.stringify(value ?? null, null, process.stdout.isTTY ? 2 : undefined)
}

/**
 * A failure as the CLI prints it on stderr: `✗ [code] message`, then each field on its own line
 * unless the message already lists them (a manifest's errors do, with their lines).
 */
export function formatError(reason: unknown): string {
  const error = PluginError.from(reason, 'internal')
  const plugin = error.plugin === undefined ? '' : `${error.plugin}: `
  const lines = [`${pc.red('✗')} ${pc.bold(`[${error.code}]`)} ${plugin}${error.rawMessage}`]
  for (const field of error.fields) {
    const where = field.line === undefined ? '' : `${field.line}:${field.column ?? 1} `
    const line = `  ${where}${field.field}: ${field.message}`
    if (!error.rawMessage.includes(line)) lines.push(line)
  }
  if (error.retryAfterMs !== undefined) lines.push(`  retry after ${error.retryAfterMs} ms`)
  return lines.join('\n')
}

/** The host's log lines on stderr: warnings and errors always, the rest with `--verbose`. */
export function cliLogger(verbose: boolean): Logger {
  return {
    log(level, message, fields) {
      if (!verbose && level !== 'warn' && level !== 'error') return
      const plugin = typeof fields?.plugin === 'string' ? `${fields.plugin}: ` : ''
      const paint = level === 'error' ? pc.red : level === 'warn' ? pc.yellow : pc.dim
      process.stderr.write(`${paint(`${level} ${plugin}${message}`)}\n`)
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
