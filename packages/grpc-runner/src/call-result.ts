import { type CallResult, parseErrorJson, parseJsonBytes } from '@corral/proto'
import { PluginError } from '@corral/types'

/**
 * Reads a call's result into what the call resolves with; throws the call's failure.
 * `maxOutputBytes` is the limit the call started with.
 */
export type ResultDecoder = (
  plugin: string,
  fn: string,
  result: CallResult,
  maxOutputBytes: number,
) => unknown

/**
 * A result's bytes, once it is known not to be an error and to be within `limit`
 * (`max_output_bytes`). Checked here for every call: the connection's own receive limit is set
 * when it opens, so it holds a grant narrowed since only here (and a widened one only from the
 * next start of the process).
 */
function checkedResult(
  plugin: string,
  fn: string,
  result: CallResult,
  limit: number,
): Uint8Array | undefined {
  if (result.errorJson && result.errorJson.length > 0) {
    throw PluginError.fromData(parseErrorJson(result.errorJson, plugin))
  }
  const json = result.resultJson
  if (json === undefined || json === null || json.length === 0) return undefined
  if (json.length > limit) {
    throw new PluginError('resource_exhausted', `${fn} returned ${json.length} bytes, more than ${limit}`, {
      plugin,
    })
  }
  return json
}

/** A bytes call's result: the bytes as the plugin sent them, copied out of the received message. */
export const bytesResult: ResultDecoder = (plugin, fn, result, limit) =>
  new Uint8Array(checkedResult(plugin, fn, result, limit) ?? [])

/** A JSON call's result: the parsed JSON, `null` for none. */
export const jsonResult: ResultDecoder = (plugin, fn, result, limit) => {
  const json = checkedResult(plugin, fn, result, limit)
  if (json === undefined) return null
  try {
    return parseJsonBytes(json)
  } catch (error) {
    throw new PluginError('plugin_error', `${fn} returned a result that is not JSON`, {
      plugin,
      cause: error,
    })
  }
}
