import { type CallRequest, type CallResult, encodeErrorJson } from '@corral/proto'
import { PluginError } from '@corral/types'
import { asBytesFunction, type PluginFunction } from './define-plugin.js'
import type { RunningCall } from './running-call.js'

/**
 * Runs one call of a plugin function; never rejects: a failure becomes the result's error (and is
 * passed to `onFailure`). A function that returns a plain value is answered in the same tick (no
 * promise on the way), the common case of a fast call.
 */
export function callFunction(
  functions: Readonly<Record<string, PluginFunction>>,
  request: CallRequest,
  running: RunningCall,
  onFailure: (error: PluginError) => void,
): CallResult | Promise<CallResult> {
  const id = request.id ?? 0
  const name = request.function ?? ''
  const failed = (error: unknown): CallResult => {
    running.finish()
    const failure = asPluginError(error)
    onFailure(failure)
    return { id, errorJson: encodeErrorJson(failure) }
  }
  const succeeded = (result: unknown): CallResult => {
    running.finish()
    try {
      return { id, resultJson: Buffer.from(JSON.stringify(result ?? null)) }
    } catch (error) {
      return failed(error)
    }
  }
  const succeededBytes = (output: unknown): CallResult => {
    if (!(output instanceof Uint8Array)) {
      return failed(
        new PluginError('internal', `a bytesFunction returned ${typeof output}, not a Uint8Array`),
      )
    }
    running.finish()
    return { id, resultJson: output }
  }
  const fn = Object.hasOwn(functions, name) ? functions[name] : undefined
  let value: unknown
  try {
    if (fn === undefined) throw new PluginError('unimplemented', `no function ${JSON.stringify(name)}`)
    const bytesFn = asBytesFunction(fn)
    if (bytesFn !== undefined) {
      const output = bytesFn(request.argsJson ?? new Uint8Array(0), running)
      return isThenable(output)
        ? Promise.resolve(output).then(succeededBytes, failed)
        : succeededBytes(output)
    }
    let args: unknown
    try {
      args = decodeJson(request.argsJson)
    } catch {
      throw new PluginError('invalid_argument', `the arguments of ${name} are not JSON`)
    }
    // The arguments as sent: a function's own annotation is not checked, withArgs' schema is.
    value = fn(args, running)
  } catch (error) {
    return failed(error)
  }
  return isThenable(value) ? Promise.resolve(value).then(succeeded, failed) : succeeded(value)
}

/** A plugin's own failure without a code is `plugin_error`. */
export function asPluginError(error: unknown): PluginError {
  return PluginError.from(error, 'plugin_error')
}

/** JSON bytes as a value; none is `null`. Throws on bytes that are not JSON. */
export function decodeJson(bytes: Uint8Array | null | undefined): unknown {
  if (bytes === null || bytes === undefined || bytes.length === 0) return null
  return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'))
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === 'function'
}
