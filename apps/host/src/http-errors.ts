import type { CorralErrorCode, FieldError } from '@corral/types'
import { isPluginError, PluginError } from '@corral/types'
import type { Registries } from './manager-api.js'

/** The HTTP status of each of Corral's own codes; a plugin's own code takes its declared status. */
const statusOfCode: Record<CorralErrorCode, number> = {
  manifest_invalid: 400,
  config_invalid: 400,
  invalid_argument: 400,
  load_failed: 500,
  incompatible: 409,
  not_found: 404,
  already_exists: 409,
  permission_denied: 403,
  rate_limited: 429,
  resource_exhausted: 429,
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
  return declared ?? statusOfCode[error.code as CorralErrorCode] ?? 500
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
