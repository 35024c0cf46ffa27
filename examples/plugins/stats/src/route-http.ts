import { PluginError } from '@corral/plugin-sdk'

/** The signed-in user the host passes along; `null` on a route without `auth`. */
export interface RouteUser {
  id: string
  name: string
  /** The RBAC groups the user belongs to. */
  groups: string[]
  admin: boolean
}

/**
 * What the host sends a route's handler: `call(handler, request)`. Every text is a string, so a
 * route's function takes plain JSON whatever the client sent.
 */
export interface RouteRequest {
  method: string
  /** The path below the plugin's mount point, without the query string: `/report/2026-11-21`. */
  path: string
  /** The route's `:param` values, decoded: `{day: '2026-11-21'}`. */
  params: Record<string, string>
  /** Query parameters, decoded; a repeated one has its first value. */
  query: Record<string, string>
  /** Request headers, names in lower case; repeated ones joined with `, `. */
  headers: Record<string, string>
  /** The request body as UTF-8 text; `''` when there is none. */
  body: string
  user: RouteUser | null
}

/**
 * What a route's handler answers. `body` is text (JSON or HTML), sent as UTF-8 with the headers
 * given. A failure is not a response: the handler throws a `PluginError` with one of the plugin's
 * error codes, and the host answers with that code's HTTP status.
 */
export interface RouteResponse {
  status: number
  headers: Record<string, string>
  body: string
}

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
