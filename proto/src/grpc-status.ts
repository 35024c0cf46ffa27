import type { CorralErrorCode } from '@corral/types'
import { status } from '@grpc/grpc-js'

/**
 * The one table between gRPC status codes and Corral error codes, both ways. A status without an
 * entry becomes `internal`; a code without one (the plugin's own, `plugin_trap`, …) becomes
 * `UNKNOWN`. Where several statuses share a code, the first (the canonical one) is the one the code maps to.
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
  [status.UNAVAILABLE, 'unavailable'],
  [status.FAILED_PRECONDITION, 'unavailable'],
  [status.ABORTED, 'unavailable'],
  [status.UNIMPLEMENTED, 'unimplemented'],
  [status.OUT_OF_RANGE, 'invalid_argument'],
  [status.UNKNOWN, 'plugin_error'],
  [status.INTERNAL, 'internal'],
  [status.DATA_LOSS, 'internal'],
]

const toCode: ReadonlyMap<number, CorralErrorCode> = new Map(statusTable)
const toStatus: ReadonlyMap<string, status> = new Map(
  statusTable.toReversed().map(([grpcStatus, code]) => [code, grpcStatus]),
)

/** The Corral code for a gRPC status; `internal` for a status the table does not know. */
export function codeFromStatus(grpcStatus: number): CorralErrorCode {
  return toCode.get(grpcStatus) ?? 'internal'
}

/** The gRPC status for a Corral code; `UNKNOWN` for a code without one (plugin-defined codes). */
export function statusFromCode(code: string): status {
  return toStatus.get(code) ?? status.UNKNOWN
}
