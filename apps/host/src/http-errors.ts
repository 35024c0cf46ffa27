import type { CorralErrorCode, FieldError } from '@corral/types'
import { isPluginError, PluginError } from '@corral/types'
import type { Registries } from './manager-api.js'

/** The HTTP status of each of Corral's own codes; a plugin's own code takes its declared status. */
const statusOfCode: Record<CorralErrorCode, number> = {
  manifest_invalid: 400,
  config_invalid: 400,
  invalid_argument: 400,
  // The plugin named cannot load as it is on disk (a missing module, an init that fails): the
  // operator's to fix, not the host's failure.
  load_failed: 422,
  incompatible: 409,
  not_found: 404,
  already_exists: 409,
  permission_denied: 403,
  rate_limited: 429,
  // A plugin past one of its limits (a result over max_output_bytes, a full call queue): trying
  // again soon is no cure, unless the error says when (`retryAfterMs`, then 429).
  resource_exhausted: 502,
  deadline_exceeded: 504,
  unavailable: 503,
  canceled: 499,
  unimplemented: 501,
  plugin_trap: 502,
  plugin_error: 502,
  internal: 500,
}

/** What every error response of the host carries. */
export interface ErrorBody {
  code: string
  message: string
  fields?: FieldError[]
}

/** The status of a failed request: fastify's own 4xx as it is (413, 415, …), else {@link errorStatus}. */
export function requestErrorStatus(error: unknown, failure: PluginError, registries: Registries): number {
  const statusCode = (error as { statusCode?: unknown }).statusCode
  if (!isPluginError(error) && typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500)
    return statusCode
  return errorStatus(failure, registries)
}

/** The status of a failure: a plugin's declared `http_status`, else the table's (500 when unknown). */
export function errorStatus(error: PluginError, registries?: Registries): number {
  const declared = registries?.errorCode(error.code)?.http_status
  if (declared !== undefined) return declared
  if (error.code === 'resource_exhausted' && error.retryAfterMs !== undefined) return 429
  return statusOfCode[error.code as CorralErrorCode] ?? 500
}

/** Codes of a plugin that cannot load as it is: an operator's mistake, not a host bug. */
const loadFailureCodes = new Set<string>([
  'load_failed',
  'manifest_invalid',
  'config_invalid',
  'incompatible',
])

/**
 * Whether a failure is a plugin that failed to load (on an administrator's load, reload, or a
 * decision that loads it): it is answered 4xx and logged as a warning, without the stack trace a
 * host bug gets.
 */
export function isLoadFailure(failure: PluginError): boolean {
  return loadFailureCodes.has(failure.code)
}

export function errorBody(error: PluginError): ErrorBody {
  return error.fields.length > 0
    ? { code: error.code, message: error.rawMessage, fields: [...error.fields] }
    : { code: error.code, message: error.rawMessage }
}

/** A fastify failure (bad JSON, schema mismatch, size cap) as a PluginError; a PluginError as itself. */
export function asPluginError(error: unknown): PluginError {
  if (isPluginError(error)) return error
  const e = error as {
    statusCode?: number
    code?: string
    message?: string
    validation?: Array<{ instancePath: string; message?: string; params?: Record<string, unknown> }>
  }
  if (e.validation !== undefined) {
    const fields = e.validation.map((v) => ({
      field: fieldOf(v.instancePath, v.params),
      message: v.message ?? 'is invalid',
    }))
    return new PluginError('invalid_argument', e.message ?? 'invalid input', { fields })
  }
  if (e.statusCode === 401 || e.statusCode === 403)
    return new PluginError('permission_denied', e.message ?? 'not allowed')
  if (e.statusCode === 404) return new PluginError('not_found', e.message ?? 'not found')
  if (e.statusCode === 413) return new PluginError('resource_exhausted', 'the request body is too large')
  if (e.statusCode === 415) return new PluginError('invalid_argument', e.message ?? 'unsupported media type')
  if (e.statusCode === 429) return new PluginError('rate_limited', e.message ?? 'too many requests')
  if (e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500)
    return new PluginError('invalid_argument', e.message ?? 'bad request')
  return PluginError.from(error, 'internal')
}

/** `/grants/0/type`, or the missing property's name, as a field path. */
function fieldOf(instancePath: string, params: Record<string, unknown> | undefined): string {
  const base = instancePath.replace(/^\//, '').replaceAll('/', '.')
  const extra = params?.missingProperty ?? params?.additionalProperty
  if (typeof extra === 'string') return base === '' ? extra : `${base}.${extra}`
  return base === '' ? '(body)' : base
}
