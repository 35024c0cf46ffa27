import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import { createServer as createTlsServer, type Server as TlsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createSecureContext } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Backends } from '../backends/create-backends.js'
import {
  backendSetKinds,
  createTestClock,
  openBackendSet,
  prepareBackendSet,
} from '../testing/backend-sets.js'
import { createTestHost, expectRefused, type TestHost } from '../testing/host-fixture.js'
import type { HostResolver } from './sandbox-dependencies.js'

/** What the test server saw: every request, with the Host header it arrived with. */
const seen: { path: string; host: string | undefined; body: string }[] = []
let server: Server
let port: number
/** A second server, never granted: a redirect to it must not reach it. */
let otherServer: Server
let otherPort: number
let otherHits = 0
/** An HTTPS server with a self-signed certificate for named.internal.test: what name did TLS ask for? */
let tlsServer: TlsServer
let tlsPort: number
const tlsNames: string[] = []
let tlsHits = 0
let certDir: string

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    request.on('data', (c: Buffer) => chunks.push(c))
    request.on('end', () => resolve(Buffer.concat(chunks).toString()))
  })
}

/** Names the stub resolver answers; anything else goes to the system resolver (localhost via /etc/hosts). */
const stubAnswers: Record<string, { address: string; family: 4 | 6 }[]> = {
  'www.public.test': [{ address: '127.0.0.1', family: 4 }],
  'mixed.public.test': [
    { address: '93.184.216.34', family: 4 },
    { address: '127.0.0.1', family: 4 },
  ],
  'v6.public.test': [{ address: '::ffff:127.0.0.1', family: 6 }],
  'named.internal.test': [{ address: '127.0.0.1', family: 4 }],
  // As Node's resolver prints an AAAA record of ::7f00:1 (IPv4-compatible loopback).
  'compat.public.test': [{ address: '::127.0.0.1', family: 6 }],
  'tunnel.internal.test': [{ address: '2002:7f00:1::1', family: 6 }],
}
let resolverCalls: string[] = []
const systemResolve = async (name: string) => {
  const { lookup } = await import('node:dns/promises')
  return (await lookup(name, { all: true })).map((a) => ({ address: a.address, family: a.family as 4 | 6 }))
}
const resolve: HostResolver = async (name) => {
  resolverCalls.push(name)
  return stubAnswers[name] ?? systemResolve(name)
}

beforeAll(async () => {
  server = createServer(async (request, response) => {
    const url = new URL(request.url ?? '/', 'http://x')
    seen.push({ path: url.pathname, host: request.headers.host, body: await readBody(request) })
    if (url.pathname === '/redirect') {
      response.writeHead(302, { location: url.searchParams.get('to') ?? '/' }).end()
    } else if (url.pathname === '/big') {
      response.end(Buffer.alloc(64 * 1024, 'x'))
    } else if (url.pathname === '/slow') {
      setTimeout(() => response.end('late'), 2_000).unref()
    } else {
      response
        .writeHead(200, { 'content-type': 'text/plain', 'x-path': url.pathname })
        .end(`hello ${url.pathname}`)
    }
  })
  otherServer = createServer((_request, response) => {
    otherHits += 1
    response.end('other')
  })
  certDir = mkdtempSync(join(tmpdir(), 'corral-tls-'))
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=named.internal.test',
      '-addext',
      'subjectAltName=DNS:named.internal.test',
      '-keyout',
      join(certDir, 'key.pem'),
      '-out',
      join(certDir, 'cert.pem'),
    ],
    { stdio: 'ignore' },
  )
  const keys = { key: readFileSync(join(certDir, 'key.pem')), cert: readFileSync(join(certDir, 'cert.pem')) }
  const context = createSecureContext(keys)
  tlsServer = createTlsServer(
    {
      ...keys,
      // Called with the name the client sent in its ClientHello (SNI).
      SNICallback: (name, callback) => {
        tlsNames.push(name)
        callback(null, context)
      },
    },
    (_request, response) => {
      tlsHits += 1
      response.end('secret')
    },
  )
  tlsServer.on('tlsClientError', () => {})
  for (const s of [server, otherServer, tlsServer])
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  port = (server.address() as AddressInfo).port
  otherPort = (otherServer.address() as AddressInfo).port
  tlsPort = (tlsServer.address() as AddressInfo).port
})
afterAll(async () => {
  for (const s of [server, otherServer, tlsServer]) {
    s.closeAllConnections()
    await new Promise((r) => s.close(r))
  }
  rmSync(certDir, { recursive: true, force: true })
})

describe.each(backendSetKinds)('http.request on the %s backends', (kind) => {
  let backends: Backends
  let host: TestHost

  beforeAll(async () => {
    backends = await openBackendSet(await prepareBackendSet(kind, 'http'), createTestClock().now)
    host = await createTestHost(
      backends,
      [
        {
          // Named grants: loopback is reachable because the grant names it.
          name: 'fetcher',
          permissions: [
            {
              type: 'http',
              access: [],
              scope: [
                `127.0.0.1:${port}`,
                `localhost:${port}`,
                `named.internal.test:${port}`,
                `named.internal.test:${tlsPort}`,
                `tunnel.internal.test:${port}`,
                'api.example.test',
              ],
            },
          ],
          rateLimits: { http_requests_per_minute: 1000 },
        },
        {
          // A wildcard grant (default ports and the test port): anything public, nothing private.
          name: 'wide',
          permissions: [{ type: 'http', access: [], scope: ['*', `*:${port}`] }],
          rateLimits: { http_requests_per_minute: 1000 },
        },
        {
          name: 'limited',
          permissions: [{ type: 'http', access: [], scope: [`127.0.0.1:${port}`] }],
          rateLimits: { http_requests_per_minute: 2 },
        },
      ],
      { resolve, limits: { httpMaxResponseBytes: 16 * 1024 } },
    )
  })
  afterAll(async () => {
    await backends?.close()
  })

  const get = (plugin: string, url: string, extra: Record<string, unknown> = {}) =>
    host.call(plugin, 'http.request', { method: 'GET', url, ...extra })

  const refusals: {
    because: string
    name: string
    plugin: string
    url: () => string
    code: string
    extra?: Record<string, unknown>
  }[] = [
    {
      because: 'credentials',
      name: 'userinfo naming a granted host before @',
      plugin: 'fetcher',
      url: () => `http://127.0.0.1:${port}@evil.test/`,
      code: 'invalid_argument',
    },
    {
      because: 'credentials',
      name: 'userinfo in front of a granted host',
      plugin: 'fetcher',
      url: () => `http://evil.test@127.0.0.1:${port}/`,
      code: 'invalid_argument',
    },
    {
      because: 'not granted',
      name: 'a host outside the grant',
      plugin: 'fetcher',
      url: () => 'http://evil.test/',
      code: 'permission_denied',
    },
    {
      because: 'not granted',
      name: 'a granted host on another port',
      plugin: 'fetcher',
      url: () => `http://127.0.0.1:${otherPort}/`,
      code: 'permission_denied',
    },
    {
      because: 'not granted',
      name: 'a port-less grant used with a port',
      plugin: 'fetcher',
      url: () => 'http://api.example.test:8080/',
      code: 'permission_denied',
    },
    {
      because: 'only http and https',
      name: 'a granted name with another scheme',
      plugin: 'fetcher',
      url: () => 'file:///etc/passwd',
      code: 'invalid_argument',
    },
    {
      because: '127.0.0.1 \\(loopback\\)',
      name: 'loopback as a decimal integer',
      plugin: 'wide',
      url: () => `http://2130706433:${port}/`,
      code: 'permission_denied',
    },
    {
      because: '127.0.0.1 \\(loopback\\)',
      name: 'loopback in hex',
      plugin: 'wide',
      url: () => `http://0x7f000001:${port}/`,
      code: 'permission_denied',
    },
    {
      because: '127.0.0.1 \\(loopback\\)',
      name: 'loopback in octal',
      plugin: 'wide',
      url: () => `http://0177.0.0.1:${port}/`,
      code: 'permission_denied',
    },
    {
      because: '\\(loopback\\)',
      name: 'loopback as IPv4-mapped IPv6',
      plugin: 'wide',
      url: () => `http://[::ffff:127.0.0.1]:${port}/`,
      code: 'permission_denied',
    },
    {
      because: '::1 \\(loopback\\)',
      name: 'IPv6 loopback',
      plugin: 'wide',
      url: () => `http://[::1]:${port}/`,
      code: 'permission_denied',
    },
    {
      because: 'embeds 127.0.0.1 \\(loopback\\)',
      name: 'loopback as IPv4-mapped IPv6 in hex',
      plugin: 'wide',
      url: () => `http://[::ffff:7f00:1]:${port}/`,
      code: 'permission_denied',
    },
    {
      because: 'embeds 127.0.0.1 \\(loopback\\)',
      name: 'loopback as IPv4-translated IPv6',
      plugin: 'wide',
      url: () => `http://[::ffff:0:127.0.0.1]:${port}/`,
      code: 'permission_denied',
    },
    {
      because: 'embeds 127.0.0.1 \\(loopback\\)',
      name: 'NAT64 form of loopback',
      plugin: 'wide',
      url: () => `http://[64:ff9b::7f00:1]:${port}/`,
      code: 'permission_denied',
    },
    {
      because: '\\(IPv4-compatible\\), an IPv6 transition form no plugin may reach',
      name: 'loopback as deprecated IPv4-compatible IPv6',
      plugin: 'wide',
      url: () => `http://[::127.0.0.1]:${port}/`,
      code: 'permission_denied',
    },
    {
      because: '\\(IPv4-compatible\\), an IPv6 transition form no plugin may reach',
      name: 'a name resolving to IPv4-compatible loopback',
      plugin: 'wide',
      url: () => `http://compat.public.test:${port}/`,
      code: 'permission_denied',
    },
    {
      because: '\\(NAT64 local-use\\), an IPv6 transition form no plugin may reach',
      name: 'loopback under the NAT64 local-use prefix',
      plugin: 'wide',
      url: () => `http://[64:ff9b:1::7f00:1]:${port}/`,
      code: 'permission_denied',
    },
    {
      because: '\\(6to4\\), an IPv6 transition form no plugin may reach',
      name: 'loopback as a 6to4 address',
      plugin: 'wide',
      url: () => `http://[2002:7f00:1::1]:${port}/`,
      code: 'permission_denied',
    },
    {
      because: '\\(Teredo\\), an IPv6 transition form no plugin may reach',
      name: 'loopback as a Teredo client address',
      plugin: 'wide',
      url: () => `http://[2001:0:4136:e378:8000:63bf:80ff:fffe]:${port}/`,
      code: 'permission_denied',
    },
    {
      because: '\\(6to4\\), an IPv6 transition form no plugin may reach',
      name: 'a granted name resolving to a 6to4 address (even named, never reached)',
      plugin: 'fetcher',
      url: () => `http://tunnel.internal.test:${port}/`,
      code: 'permission_denied',
    },
    {
      because: 'unspecified',
      name: '0.0.0.0',
      plugin: 'wide',
      url: () => `http://0.0.0.0:${port}/`,
      code: 'permission_denied',
    },
    {
      because: 'private',
      name: 'a private address',
      plugin: 'wide',
      url: () => 'http://10.1.2.3/',
      code: 'permission_denied',
    },
    {
      because: 'linkLocal',
      name: 'the cloud metadata address',
      plugin: 'wide',
      url: () => 'http://169.254.169.254/latest/meta-data/',
      code: 'permission_denied',
    },
    {
      because: '127.0.0.1 \\(loopback\\)',
      name: 'localhost under a wildcard grant',
      plugin: 'wide',
      url: () => `http://localhost:${port}/`,
      code: 'permission_denied',
    },
    {
      because: '127.0.0.1 \\(loopback\\)',
      name: 'a public-looking name resolving to 127.0.0.1',
      plugin: 'wide',
      url: () => `http://www.public.test:${port}/`,
      code: 'permission_denied',
    },
    {
      because: '127.0.0.1 \\(loopback\\)',
      name: 'a name with one public and one loopback address',
      plugin: 'wide',
      url: () => `http://mixed.public.test:${port}/`,
      code: 'permission_denied',
    },
    {
      because: '\\(loopback\\)',
      name: 'a name resolving to IPv4-mapped loopback',
      plugin: 'wide',
      url: () => `http://v6.public.test:${port}/`,
      code: 'permission_denied',
    },
    {
      because: 'evil.test:80 is not granted',
      name: 'a redirect to a host outside the grant',
      plugin: 'fetcher',
      url: () => `http://127.0.0.1:${port}/redirect?to=http://evil.test/`,
      code: 'permission_denied',
    },
    {
      because: 'is not granted',
      name: 'a redirect to another port of a granted host',
      plugin: 'fetcher',
      url: () => `http://127.0.0.1:${port}/redirect?to=http://127.0.0.1:${otherPort}/`,
      code: 'permission_denied',
    },
    {
      because: '169.254.169.254:80 is not granted',
      name: 'a redirect to the metadata address',
      plugin: 'fetcher',
      url: () => `http://127.0.0.1:${port}/redirect?to=http://169.254.169.254/`,
      code: 'permission_denied',
    },
    {
      because: 'set by the host',
      name: 'a Host header override',
      plugin: 'fetcher',
      url: () => `http://127.0.0.1:${port}/`,
      code: 'invalid_argument',
      extra: { headers: { Host: 'evil.test' } },
    },
    {
      because: 'must be one line',
      name: 'a header value that would start another header',
      plugin: 'fetcher',
      url: () => `http://127.0.0.1:${port}/`,
      code: 'invalid_argument',
      extra: { headers: { 'x-a': 'b\r\nHost: evil.test' } },
    },
    {
      because: 'larger than',
      name: 'a response over the size cap',
      plugin: 'fetcher',
      url: () => `http://127.0.0.1:${port}/big`,
      code: 'resource_exhausted',
    },
  ]

  it.each(refusals)('refuses $name', async ({ plugin, url, code, extra, because }) => {
    const before = otherHits
    await expectRefused(get(plugin, url(), extra), code)
    await expect(get(plugin, url(), extra)).rejects.toThrow(new RegExp(because))
    expect(otherHits).toBe(before)
  })

  it('never reached a server for a refused target', () => {
    expect(seen.some((s) => s.host?.includes('evil') || s.host?.includes('public.test'))).toBe(false)
  })

  it('fetches a granted host and returns status, headers and a base64 body', async () => {
    const result = (await get('fetcher', `http://127.0.0.1:${port}/hello`)) as {
      status: number
      headers: Record<string, string>
      body: string
    }
    expect(result.status).toBe(200)
    expect(result.headers['x-path']).toBe('/hello')
    expect(Buffer.from(result.body, 'base64').toString()).toBe('hello /hello')
  })

  it('connects to the checked address of a granted name and keeps its Host header', async () => {
    resolverCalls = []
    await get('fetcher', `http://named.internal.test:${port}/named`)
    expect(seen.at(-1)).toMatchObject({ path: '/named', host: `named.internal.test:${port}` })
    // Resolved once: the connection used the checked answer, not a second lookup.
    expect(resolverCalls).toEqual(['named.internal.test'])
  })

  it('speaks TLS to the checked address under the granted name, and verifies the certificate', async () => {
    // The certificate is self-signed: the host must not accept it, and the server must not serve.
    await expect(get('fetcher', `https://named.internal.test:${tlsPort}/`)).rejects.toMatchObject({
      code: 'unavailable',
      message: expect.stringMatching(/self[- ]signed|certificate/i),
    })
    expect(tlsHits).toBe(0)
    expect(tlsNames.at(-1)).toBe('named.internal.test')
  })

  it('reaches localhost through the system resolver when the grant names it', async () => {
    const result = (await get('fetcher', `http://localhost:${port}/local`)) as { status: number }
    expect(result.status).toBe(200)
  })

  it('accepts another spelling of a granted address (it is the same address)', async () => {
    const result = (await get('fetcher', `http://2130706433:${port}/decimal`)) as { status: number }
    expect(result.status).toBe(200)
  })

  it('follows a redirect inside the grant', async () => {
    const result = (await get('fetcher', `http://127.0.0.1:${port}/redirect?to=/target`)) as {
      status: number
      body: string
    }
    expect(result.status).toBe(200)
    expect(Buffer.from(result.body, 'base64').toString()).toBe('hello /target')
  })

  it('sends a POST body', async () => {
    await host.call('fetcher', 'http.request', {
      method: 'post',
      url: `http://127.0.0.1:${port}/echo`,
      headers: { 'content-type': 'text/plain' },
      body: Buffer.from('ping').toString('base64'),
    })
    expect(seen.at(-1)).toMatchObject({ path: '/echo', body: 'ping' })
  })

  it('stops at the causing call deadline', async () => {
    await expectRefused(
      host.call(
        'fetcher',
        'http.request',
        { method: 'GET', url: `http://127.0.0.1:${port}/slow` },
        { deadline: Date.now() + 200 },
      ),
      'deadline_exceeded',
    )
  })

  it('counts HTTP requests per minute, redirects included', async () => {
    await get('limited', `http://127.0.0.1:${port}/one`)
    await expect(get('limited', `http://127.0.0.1:${port}/redirect?to=/two`)).rejects.toMatchObject({
      code: 'rate_limited',
      retryAfterMs: expect.any(Number),
    })
  })
})
