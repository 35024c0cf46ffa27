import { PluginError } from '@corral/types'

/** A plugin's answer to a route call, as the host sends it. */
export interface PluginResponse {
  status: number
  headers: Record<string, string>
  /** A string is sent as it is; anything else as JSON. */
  body: unknown
}

/** Headers a plugin may not set: the host owns cookies, framing and its security policy. */
const refusedHeaders = new Set([
  'set-cookie',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'content-security-policy',
  'strict-transport-security',
])

/** The MIME types a browser runs as scripts (WHATWG's "JavaScript MIME type" list). */
const javaScriptType = /^\s*(?:application|text)\/(?:x-)?(?:java|ecma|j|live)script/i

/**
 * A plugin's HTML runs in a sandbox of its own origin (no scripts, no host cookies): plugins are
 * not trusted, and their pages are served beside the administrator's.
 */
export const pluginHtmlPolicy = "sandbox allow-forms allow-popups; default-src 'self'; script-src 'none'"

/**
 * Reads a route handler's result: `{status, headers?, body?}` is a response; any other value is a
 * 200 with that value as its body (a string as HTML, anything else as JSON).
 */
export function toPluginResponse(plugin: string, result: unknown): PluginResponse {
  if (typeof result !== 'object' || result === null || !('status' in result))
    return { status: 200, headers: {}, body: result ?? null }
  const {
    status,
    headers = {},
    body = null,
  } = result as { status: unknown; headers?: unknown; body?: unknown }
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 200 || status > 599)
    throw new PluginError('plugin_error', `route answered with status ${String(status)} (200-599 allowed)`, {
      plugin,
    })
  if (typeof headers !== 'object' || headers === null)
    throw new PluginError('plugin_error', 'route answered with headers that are not an object', { plugin })
  const kept: Record<string, string> = {}
  for (const [name, value] of Object.entries(headers)) {
    const key = name.toLowerCase()
    if (refusedHeaders.has(key) || typeof value !== 'string' || !/^[a-z0-9-]+$/.test(key)) continue
    kept[key] = value
  }
  // The host's pages may load scripts from the host's origin, the plugins' routes included: a
  // plugin's answer is never one (served as nosniff, it is not run as one either).
  if (kept['content-type'] !== undefined && javaScriptType.test(kept['content-type']))
    kept['content-type'] = 'text/plain; charset=utf-8'
  return { status, headers: kept, body }
}
