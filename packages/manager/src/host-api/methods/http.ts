import http, { type IncomingHttpHeaders } from 'node:http'
import https from 'node:https'
import type { LookupFunction } from 'node:net'
import { PluginError } from '@corral/types'
import { z } from 'zod'
import { type CheckedTarget, checkTarget, parseRequestUrl } from '../address-guard.js'
import { defineMethod, enforceRateLimit } from '../method-handler.js'

const methods = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const
/** Headers the host sets itself: a plugin setting Host could reach another site behind the checked address. */
const hostOwnedHeaders = new Set([
  'host',
  'connection',
  'content-length',
  'transfer-encoding',
  'upgrade',
  'proxy-authorization',
])
/** Headers not carried to another host when a redirect leaves the original one. */
const credentialHeaders = new Set(['authorization', 'cookie'])

interface HttpResponse {
  status: number
  headers: Record<string, string>
  body: Buffer
}

/** A DNS lookup that answers only with the addresses already checked: nothing is resolved twice. */
function pinnedLookup(target: CheckedTarget): LookupFunction {
  return ((_hostname: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
    if (options?.all) callback(null, target.addresses)
    else callback(null, target.addresses[0]?.address, target.addresses[0]?.family)
  }) as LookupFunction
}

function flattenHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value
  }
  return out
}

function send(
  target: CheckedTarget,
  method: string,
  headers: Record<string, string>,
  body: Buffer | undefined,
  maxBytes: number,
  signal: AbortSignal,
): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const client = target.url.protocol === 'https:' ? https : http
    const request = client.request(target.url, {
      method,
      headers: body === undefined ? headers : { ...headers, 'content-length': String(body.length) },
      lookup: pinnedLookup(target),
      signal,
      // No connection reuse: a pooled socket could have been opened to another checked address.
      agent: false,
    })
    request.on('error', (error) => {
      if (signal.aborted) reject(signal.reason)
      else reject(new PluginError('unavailable', `HTTP request failed: ${error.message}`, { cause: error }))
    })
    request.on('response', (response) => {
      const chunks: Buffer[] = []
      let size = 0
      response.on('data', (chunk: Buffer) => {
        size += chunk.length
        if (size > maxBytes) {
          response.destroy()
          request.destroy()
          reject(new PluginError('resource_exhausted', `the response is larger than ${maxBytes} bytes`))
          return
        }
        chunks.push(chunk)
      })
      response.on('error', (error) =>
        reject(signal.aborted ? signal.reason : PluginError.from(error, 'unavailable')),
      )
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          headers: flattenHeaders(response.headers),
          body: Buffer.concat(chunks),
        }),
      )
    })
    request.end(body)
  })
}

/**
 * `http.request`: one HTTP(S) request to a granted host. The URL is parsed once; the host and port
 * must match an `http` scope; the name is resolved once, every address checked, and the
 * connection made to those addresses only (Host header and TLS name kept). Redirects are followed
 * by the host, each hop checked and counted like a new request. Response size and time are capped.
 */
export const httpRequest = defineMethod({
  args: z.strictObject({
    method: z
      .string()
      .transform((m) => m.toUpperCase())
      .pipe(z.enum(methods)),
    url: z.string().min(1).max(8192),
    headers: z
      .record(
        z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$/, 'must be an HTTP header name'),
        // No CR, LF or NUL: a header value must not start another header.
        z
          .string()
          .max(16_384)
          .regex(/^[^\r\n\0]*$/, 'must be one line'),
      )
      .default({}),
    body: z
      .string()
      .max(16 << 20)
      .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64')
      .optional(),
  }),
  rateLimit: 'http',
  async run(args, scope) {
    const headers: Record<string, string> = {}
    for (const [name, value] of Object.entries(args.headers)) {
      if (hostOwnedHeaders.has(name.toLowerCase())) {
        throw new PluginError('invalid_argument', `header ${name} is set by the host`)
      }
      headers[name.toLowerCase()] = value
    }
    const { limits } = scope.deps
    const maxBytes = Math.min(limits.httpMaxResponseBytes, scope.grant.limits.max_output_bytes)
    let method: string = args.method
    let body = args.body === undefined ? undefined : Buffer.from(args.body, 'base64')
    let url = parseRequestUrl(args.url)
    scope.describe(`${method} ${url.host}`)
    for (let hop = 0; ; hop++) {
      const target = await checkTarget(url, scope.grant, scope.deps.resolve, scope.plugin)
      let response: HttpResponse
      try {
        response = await send(target, method, headers, body, maxBytes, scope.signal)
      } catch (error) {
        throw PluginError.from(error, 'unavailable')
      }
      const location = response.headers.location
      if (
        response.status < 300 ||
        response.status > 399 ||
        response.status === 304 ||
        location === undefined
      ) {
        return { status: response.status, headers: response.headers, body: response.body.toString('base64') }
      }
      if (hop >= limits.httpMaxRedirects) {
        throw new PluginError('resource_exhausted', `more than ${limits.httpMaxRedirects} redirects`)
      }
      const next = parseRequestUrl(new URL(location, url).toString())
      scope.describe(`${args.method} ${parseRequestUrl(args.url).host} -> ${next.host}`)
      if (next.host !== url.host || next.protocol !== url.protocol) {
        for (const name of credentialHeaders) delete headers[name]
      }
      // As browsers do: 303 always, and 301/302 after POST, turn into a GET without a body.
      if (
        response.status === 303 ||
        ((response.status === 301 || response.status === 302) && method === 'POST')
      ) {
        method = 'GET'
        body = undefined
      }
      url = next
      await enforceRateLimit(scope, 'http')
    }
  },
})
