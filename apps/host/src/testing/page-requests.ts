import type { HostServer } from '../server.js'

/**
 * A page as a signed-in browser gets it, which must have a form posting to `action`: its HTML and
 * the CSRF token of its forms.
 */
export async function pageWithForm(
  server: HostServer,
  cookie: string,
  url: string,
  action: string,
): Promise<{ html: string; token: string }> {
  const res = await server.app.inject({ url, headers: { cookie, accept: 'text/html' } })
  if (res.statusCode !== 200) throw new Error(`GET ${url}: ${res.statusCode} ${res.body}`)
  if (!res.body.includes(`action="${action}"`)) throw new Error(`${url} has no form posting to ${action}`)
  return { html: res.body, token: /name="_csrf" value="([^"]+)"/.exec(res.body)?.[1] ?? '' }
}

/** Posts a page's form as a browser does: URL-encoded, with the page's CSRF token. */
export function submitForm(
  server: HostServer,
  cookie: string,
  token: string,
  action: string,
  fields: Record<string, string> = {},
) {
  return server.app.inject({
    method: 'POST',
    url: action,
    headers: { cookie, accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ _csrf: token, ...fields }).toString(),
  })
}

/** Reads a live stream (SSE): `until(text)` resolves with what came up to and including `text`. */
export function streamReader(response: Response): {
  until(text: string): Promise<string>
  cancel(): Promise<void>
} {
  const reader = (response.body as ReadableStream<Uint8Array>).getReader()
  const decoder = new TextDecoder()
  let buffered = ''
  return {
    async until(text) {
      while (!buffered.includes(text)) {
        const { value, done } = await reader.read()
        if (done) throw new Error(`the stream ended before ${text}: ${buffered}`)
        buffered += decoder.decode(value, { stream: true })
      }
      const end = buffered.indexOf(text) + text.length
      const read = buffered.slice(0, end)
      buffered = buffered.slice(end)
      return read
    },
    cancel: () => reader.cancel(),
  }
}
