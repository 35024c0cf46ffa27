import type { CallOptions } from './plugin.js'
import { PluginError } from './plugin-error.js'

/**
 * How long a call may run: the caller's `timeoutMs`, never more than the grant's `call_timeout`
 * (a ceiling: a caller may shorten a call, never lengthen it).
 */
export function callTimeoutMs(options: Pick<CallOptions, 'timeoutMs'>, callTimeout: number): number {
  return Math.min(options.timeoutMs ?? callTimeout, callTimeout)
}

/** Refuses a call whose signal is already aborted, before any work starts: `canceled`. */
export function throwIfCanceled(fn: string, options: Pick<CallOptions, 'signal'>, plugin: string): void {
  if (options.signal?.aborted) {
    throw new PluginError('canceled', `${fn} was canceled before it started`, { plugin })
  }
}
