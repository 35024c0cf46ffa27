import { type CallRequest, type CallResult, encodeErrorJson, parseJsonBytes } from '@corral/proto'
import { PluginError } from '@corral/types'
import { asBytesFunction, type PluginFunction } from './define-plugin.js'
import type { RunningCall } from './running-call.js'

/** What a `bytesFunction` gets when the call carries no argument bytes. */
const noInput = new Uint8Array(0)

/**
 * Runs one call of a plugin function; never rejects: a failure becomes the result's error (and is
 * passed to `onFailure`). A function that returns a plain value is answered in the same tick (no
 * promise on the way), the common case of a fast call; nothing is allocated for the outcomes a
 * call does not have (no closures unless the function returns a promise).
 */
export function callFunction(
  functions: Readonly<Record<string, PluginFunction>>,
  request: CallRequest,
  running: RunningCall,
  onFailure: (error: PluginError) => void,
): CallResult | Promise<CallResult> {
  const id = request.id ?? 0
  const name = request.function ?? ''
  const fn = Object.hasOwn(functions, name) ? functions[name] : undefined
  let answer: typeof jsonAnswer
  let value: unknown
  try {
    if (fn === undefined) throw new PluginError('unimplemented', `no function ${JSON.stringify(name)}`)
    const bytesFn = asBytesFunction(fn)
    if (bytesFn !== undefined) {
      answer = bytesAnswer
      value = bytesFn(request.argsJson ?? noInput, running)
    } else {
      answer = jsonAnswer
      // The arguments as sent: a function's own annotation is not checked, withArgs' schema is.
      value = fn(parseArguments(name, request.argsJson), running)
    }
  } catch (error) {
    return failedAnswer(id, running, onFailure, error)
  }
  if (!isThenable(value)) return answer(id, running, onFailure, value)
  return Promise.resolve(value).then(
    (output) => answer(id, running, onFailure, output),
    (error: unknown) => failedAnswer(id, running, onFailure, error),
  )
}

/** A JSON function's arguments; `invalid_argument` when they are not JSON. */
function parseArguments(name: string, argsJson: Uint8Array | null | undefined): unknown {
  try {
    return decodeJson(argsJson)
  } catch {
    throw new PluginError('invalid_argument', `the arguments of ${name} are not JSON`)
  }
}

function jsonAnswer(
  id: number,
  running: RunningCall,
  onFailure: (error: PluginError) => void,
  output: unknown,
): CallResult {
  running.finish()
  try {
    return { id, resultJson: Buffer.from(JSON.stringify(output ?? null)) }
  } catch (error) {
    return failedAnswer(id, running, onFailure, error)
  }
}

function bytesAnswer(
  id: number,
  running: RunningCall,
  onFailure: (error: PluginError) => void,
  output: unknown,
): CallResult {
  if (!(output instanceof Uint8Array)) {
    const error = new PluginError('internal', `a bytesFunction returned ${typeof output}, not a Uint8Array`)
    return failedAnswer(id, running, onFailure, error)
  }
  running.finish()
  return { id, resultJson: output }
}

function failedAnswer(
  id: number,
  running: RunningCall,
  onFailure: (error: PluginError) => void,
  error: unknown,
): CallResult {
  running.finish()
  const failure = asPluginError(error)
  onFailure(failure)
  return { id, errorJson: encodeErrorJson(failure) }
}

/** A plugin's own failure without a code is `plugin_error`. */
export function asPluginError(error: unknown): PluginError {
  return PluginError.from(error, 'plugin_error')
}

/** JSON bytes as a value; none is `null`. Throws on bytes that are not JSON. */
export function decodeJson(bytes: Uint8Array | null | undefined): unknown {
  if (bytes === null || bytes === undefined || bytes.length === 0) return null
  return parseJsonBytes(bytes)
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === 'function'
}
