import { PluginError, type RouteRequest, type RouteResponse } from '@corral/types'
import type { CheckedFunction, PluginFunction } from './define-plugin.js'

/** Whether `value` has the shape of what the host calls a route's handler with. */
function isRouteRequest(value: unknown): value is RouteRequest {
  if (typeof value !== 'object' || value === null) return false
  const { method, body, query, params } = value as Partial<Record<keyof RouteRequest, unknown>>
  const isObject = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v)
  return typeof method === 'string' && typeof body === 'string' && isObject(query) && isObject(params)
}

/** The fields of a request's JSON body; none for an empty body. */
function bodyFields(body: string): Record<string, unknown> {
  if (body.trim() === '') return {}
  let value: unknown
  try {
    value = JSON.parse(body)
  } catch {
    throw new PluginError('invalid_argument', 'the request body is not JSON: send a JSON object')
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new PluginError('invalid_argument', 'the request body is not a JSON object')
  return value as Record<string, unknown>
}

/**
 * Makes a route handler of a plugin function. The host calls a route's handler with the HTTP
 * request (a {@link RouteRequest}: method, path, params, query, headers, the body as text, user);
 * `jsonRoute(fn)` calls `fn` with the request's arguments instead — its query's values, then its JSON
 * body's fields, then its path's `:params`, a later one replacing an earlier of the same name — and
 * answers with `fn`'s result as JSON, status 200. What `fn` throws is the response: a `PluginError`
 * gets its code's HTTP status (for the plugin's own codes, the `http_status` its registration
 * declares), so a `withArgs` schema's `invalid_argument` is a 400. A body that is not a JSON object
 * is refused with `invalid_argument` before `fn` runs, and so is a call that is not a route's.
 *
 * @example
 * const greet = withArgs(z.object({ name: z.string() }), ({ name }) => ({ message: `Hello, ${name}!` }))
 *
 * export default definePlugin({
 *   // POST /plugins/<name>/greet with {"name": "Ada"} → 200 {"message": "Hello, Ada!"}
 *   register: { routes: [{ method: 'POST', path: '/greet', handler: 'greetRoute', middleware: [] }] },
 *   functions: { greet, greetRoute: jsonRoute(greet) },
 * })
 */
export function jsonRoute(fn: PluginFunction): CheckedFunction<RouteRequest, RouteResponse> {
  return async (request, context) => {
    if (!isRouteRequest(request)) {
      throw new PluginError(
        'invalid_argument',
        'this function answers a route: it takes the HTTP request the host passes ({method, path, params, query, headers, body, user}); call the function it wraps with plain arguments',
      )
    }
    const args = { ...request.query, ...bodyFields(request.body), ...request.params }
    const result = await fn(args, context)
    return {
      status: 200,
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body: JSON.stringify(result ?? null),
    }
  }
}
