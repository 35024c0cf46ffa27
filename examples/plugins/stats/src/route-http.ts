import { PluginError, type RouteRequest, type RouteResponse } from '@corral/plugin-sdk'

const stringRecord = (value: unknown): value is Record<string, string> =>
  typeof value === 'object' &&
  value !== null &&
  !Array.isArray(value) &&
  Object.values(value).every((v) => typeof v === 'string')

/** Checks that a call's arguments are a {@link RouteRequest}: a route function called otherwise is misused. */
export function routeRequest(args: unknown): RouteRequest {
  const r = (args ?? {}) as Partial<RouteRequest>
  if (
    typeof r.method !== 'string' ||
    typeof r.path !== 'string' ||
    !stringRecord(r.params) ||
    !stringRecord(r.query) ||
    !stringRecord(r.headers) ||
    typeof r.body !== 'string' ||
    (r.user !== null && typeof r.user !== 'object')
  ) {
    throw new PluginError(
      'invalid_argument',
      'a route expects {method, path, params, query, headers, body, user}',
    )
  }
  return r as RouteRequest
}

/** A JSON response. */
export function jsonResponse(
  status: number,
  value: unknown,
  headers: Record<string, string> = {},
): RouteResponse {
  return {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
    body: JSON.stringify(value),
  }
}

/** An HTML response. */
export function htmlResponse(status: number, html: string): RouteResponse {
  return { status, headers: { 'content-type': 'text/html; charset=utf-8' }, body: html }
}
