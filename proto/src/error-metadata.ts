import { isPluginErrorCode, isPluginErrorData, PluginError, type PluginErrorData } from '@corral/types'
import { Metadata, type ServiceError, type status } from '@grpc/grpc-js'
import { codeFromStatus, statusFromCode } from './grpc-status.js'
import { parseJsonBytes } from './json-bytes.js'

/**
 * The metadata key under which a Corral plugin sends the whole {@link PluginErrorData} of a failed
 * unary RPC, as JSON (non-ASCII characters escaped: gRPC metadata values are printable ASCII).
 */
export const errorMetadataKey = 'corral-error'

/**
 * The most bytes the error JSON and the status message may each take in a failed RPC's trailers.
 * Trailers are HTTP/2 headers: Node's HTTP/2 drops a call whose trailers pass about 64 KiB without
 * an answer (the caller waits for its deadline), and gRPC's other implementations refuse metadata
 * above 8 KiB by default.
 */
export const errorMetadataMaxBytes = 8 << 10

/**
 * A {@link PluginError} as JSON bytes: what `CallResult.errorJson`, `HostCallResponse.errorJson` and
 * `HealthResponse.lastErrorJson` carry.
 */
export function encodeErrorJson(error: PluginError): Buffer {
  return Buffer.from(JSON.stringify(error.toData()))
}

/**
 * Reads a {@link PluginErrorData} a plugin sent. A plugin may use Corral's codes and its own
 * (`<plugin>:<code>`); a code prefixed with another plugin's name, or no valid code at all, becomes
 * `plugin_error` so that no plugin speaks for another. Bytes that are not JSON become `plugin_error`
 * saying so.
 */
export function parseErrorJson(bytes: Uint8Array, plugin: string): PluginErrorData {
  let value: unknown
  try {
    value = parseJsonBytes(bytes)
  } catch {
    return { code: 'plugin_error', message: 'the plugin sent an error that is not JSON', plugin }
  }
  if (isPluginErrorData(value)) {
    const foreign = value.code.includes(':') && !value.code.startsWith(`${plugin}:`)
    return { ...value, code: foreign ? 'plugin_error' : value.code, plugin }
  }
  const message = (value as { message?: unknown } | null)?.message
  return {
    code: 'plugin_error',
    message: typeof message === 'string' ? message : 'the plugin failed',
    plugin,
  }
}

/** What a grpc-js handler passes its callback to fail an RPC. */
export interface ErrorStatus {
  code: status
  details: string
  metadata: Metadata
}

/**
 * The plugin side: how a unary RPC fails with `error`. The status comes from the table, the
 * message is the details, and the whole error travels under {@link errorMetadataKey} for
 * {@link errorFromStatus} on the host. Each stays within {@link errorMetadataMaxBytes}: a longer
 * message is cut, and an error still too large keeps only its code and as much message as fits.
 */
export function errorStatus(error: PluginError): ErrorStatus {
  const metadata = new Metadata()
  metadata.set(errorMetadataKey, boundedErrorJson(error.toData()))
  return {
    code: statusFromCode(error.code),
    details: truncateUtf8(error.rawMessage, errorMetadataMaxBytes),
    metadata,
  }
}

/**
 * The host side: a failed RPC as a PluginError. The error a Corral plugin attached wins (read by
 * {@link parseErrorJson}); without one, or with one above {@link errorMetadataMaxBytes} (which no
 * Corral peer sends), the status maps through the table and the details are the message, after
 * `what` (the RPC or function that failed). Anything that is not a gRPC error is `internal`.
 */
export function errorFromStatus(error: unknown, plugin: string, what: string): PluginError {
  const serviceError = error as Partial<ServiceError>
  if (typeof serviceError.code !== 'number') return PluginError.from(error, 'internal', plugin)
  const attached = serviceError.metadata?.get(errorMetadataKey)[0]
  if (typeof attached === 'string' && attached.length <= errorMetadataMaxBytes) {
    return PluginError.fromData(parseErrorJson(Buffer.from(attached), plugin))
  }
  return new PluginError(
    codeFromStatus(serviceError.code),
    `${what}: ${serviceError.details ?? serviceError.message}`,
    { plugin, cause: error },
  )
}

/** The error as ASCII JSON within {@link errorMetadataMaxBytes}. */
function boundedErrorJson(data: PluginErrorData): string {
  const whole = asciiJson(data)
  if (whole.length <= errorMetadataMaxBytes) return whole
  // Too large: the code and as much of the message as fits (the host names the plugin itself).
  // Escaping can make the JSON six times the message, so the message is halved until it fits.
  const code = isPluginErrorCode(data.code) ? data.code : 'plugin_error'
  let message = data.message.slice(0, errorMetadataMaxBytes)
  let json: string
  do {
    message = message.slice(0, Math.floor(message.length / 2))
    json = asciiJson({ code, message: `${message}…` })
  } while (json.length > errorMetadataMaxBytes)
  return json
}

/** JSON with every character outside printable ASCII escaped, so it is a valid metadata value. */
function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[^ -~]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  )
}

/** `text` cut to whole characters within `maxBytes` of UTF-8. */
function truncateUtf8(text: string, maxBytes: number): string {
  const { read } = new TextEncoder().encodeInto(text, new Uint8Array(maxBytes))
  return text.slice(0, read)
}
