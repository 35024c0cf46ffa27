import { type CorralErrorCode, isPluginErrorData, PluginError, type PluginErrorData } from '@corral/types'
import { type ServiceError, status } from '@grpc/grpc-js'

/**
 * The one table between gRPC status codes and Corral error codes, both ways. A status without an
 * entry becomes `internal` (host side) or `unknown` (wire side).
 */
const statusTable: ReadonlyArray<readonly [status, CorralErrorCode]> = [
  [status.CANCELLED, 'canceled'],
  [status.INVALID_ARGUMENT, 'invalid_argument'],
  [status.DEADLINE_EXCEEDED, 'deadline_exceeded'],
  [status.NOT_FOUND, 'not_found'],
  [status.ALREADY_EXISTS, 'already_exists'],
  [status.PERMISSION_DENIED, 'permission_denied'],
  [status.UNAUTHENTICATED, 'permission_denied'],
  [status.RESOURCE_EXHAUSTED, 'resource_exhausted'],
  [status.FAILED_PRECONDITION, 'unavailable'],
  [status.ABORTED, 'unavailable'],
  [status.UNAVAILABLE, 'unavailable'],
  [status.UNIMPLEMENTED, 'unimplemented'],
  [status.OUT_OF_RANGE, 'invalid_argument'],
  [status.UNKNOWN, 'plugin_error'],
  [status.DATA_LOSS, 'internal'],
  [status.INTERNAL, 'internal'],
]

const toCode = new Map<status, CorralErrorCode>(statusTable)
const toStatus = new Map<string, status>()
for (const [grpcStatus, code] of statusTable) if (!toStatus.has(code)) toStatus.set(code, grpcStatus)

/** Metadata key under which a Corral peer sends the full PluginErrorData of a failed unary RPC. */
export const errorMetadataKey = 'corral-error'

/** The Corral code for a gRPC status. */
export function codeFromStatus(grpcStatus: number): CorralErrorCode {
  return toCode.get(grpcStatus as status) ?? 'internal'
}

/** The gRPC status for a Corral code (plugin-defined codes are `UNKNOWN`). */
export function statusFromCode(code: string): status {
  return toStatus.get(code) ?? status.UNKNOWN
}

/**
 * Turns a failed RPC into a PluginError: the PluginErrorData a Corral peer attached, or else the
 * status code through the table.
 */
export function errorFromStatus(error: unknown, plugin: string, what: string): PluginError {
  const serviceError = error as Partial<ServiceError>
  if (typeof serviceError.code !== 'number') return PluginError.from(error, 'internal', plugin)
  const attached = serviceError.metadata?.get(errorMetadataKey)[0]
  if (typeof attached === 'string') {
    return PluginError.fromData(parseErrorJson(Buffer.from(attached), plugin))
  }
  return new PluginError(
    codeFromStatus(serviceError.code),
    `${what}: ${serviceError.details ?? serviceError.message}`,
    {
      plugin,
      cause: error,
    },
  )
}

/**
 * Reads a PluginErrorData sent by a plugin. A plugin may use Corral's codes and its own
 * (`<plugin>:<code>`); a code prefixed with another plugin's name, or no valid code at all, becomes
 * `plugin_error` so that no plugin speaks for another.
 */
export function parseErrorJson(bytes: Uint8Array, plugin: string): PluginErrorData {
  let value: unknown
  try {
    value = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'))
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
