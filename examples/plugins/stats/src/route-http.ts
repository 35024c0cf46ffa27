import type { RouteRequest, RouteResponse } from '@corral/plugin-sdk'
import * as z from 'zod'

const text = z.record(z.string(), z.string())

/** What a route function is called with: a {@link RouteRequest} (a route function called otherwise is misused). */
export const routeRequest: z.ZodType<RouteRequest, RouteRequest> = z.object({
  method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']),
  path: z.string(),
  params: text,
  query: text,
  headers: text,
  body: z.string(),
  user: z
    .object({ id: z.string(), name: z.string(), groups: z.array(z.string()), admin: z.boolean() })
    .nullable(),
})

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
