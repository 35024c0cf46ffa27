import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { corralWat, wat2wasm } from '@corral/wasm-runner/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { signIn } from './testing/fake-host.js'
import { pageWithForm, submitForm } from './testing/page-requests.js'
import { adminPassword, postSession, startTestHost, type TestHost } from './testing/test-host.js'

// A real host over hello-wasm and stats (approved), hello-grpc (pending review: its refused table
// is in the audit log) and `big`, a WAT plugin whose echo route answers more than the 1 KiB its
// manifest allows. Its request log is kept to see how a failed load is logged.
const bigManifest = `
name: big
version: 0.1.0
runtime: wasm
entry:
  wasm: plugin.wasm
resources:
  max_output_bytes: 1024
provides:
  routes:
    - { method: POST, path: /echo, handler: echo }
`
const noModuleManifest = `
name: no-module
version: 0.1.0
runtime: wasm
entry:
  wasm: build/plugin.wasm
`

let root: string
let host: TestHost
const requestLog: Array<Record<string, unknown>> = []
let admin: { cookie: string; csrf: string }

const api = (method: 'GET' | 'POST' | 'PUT' | 'PATCH', url: string, body?: unknown) =>
  host.server.app.inject({
    method,
    url: `/api/v1${url}`,
    headers: { cookie: admin.cookie, 'x-csrf-token': admin.csrf },
    ...(body === undefined ? {} : { payload: body as Record<string, unknown> }),
  })

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'corral-host-admin-'))
  const big = path.join(root, 'big')
  await mkdir(big)
  await writeFile(path.join(big, 'plugin.yaml'), bigManifest)
  await writeFile(path.join(big, 'plugin.wasm'), await wat2wasm(corralWat('')))
  await mkdir(path.join(root, 'no-module'))
  await writeFile(path.join(root, 'no-module/plugin.yaml'), noModuleManifest)
  host = await startTestHost({
    plugins: ['hello-wasm', 'stats', 'hello-grpc'],
    approved: ['hello-wasm', 'stats'],
    server: {
      logger: { level: 'info', stream: { write: (line) => requestLog.push(JSON.parse(line)) } },
    },
  })
  admin = await signIn(host.server, 'admin', adminPassword)
}, 120_000)

afterAll(async () => {
  await host?.stop()
  if (root !== undefined) await rm(root, { recursive: true, force: true })
})

describe('the admin API and pages of a real host', () => {
  it('refuses a password bcrypt would cut (over 72 bytes) on create and on reset, with the field', async () => {
    const long = `${'x'.repeat(70)}€` // 73 bytes of UTF-8 in 71 characters
    const created = await api('POST', '/users', { username: 'carol', password: long })
    expect(created.statusCode).toBe(400)
    expect(created.json()).toMatchObject({
      code: 'invalid_argument',
      message: expect.stringMatching(/at most 72 bytes/),
      fields: [{ field: 'password', message: 'must have at most 72 bytes' }],
    })
    expect((await api('POST', '/users', { username: 'carol', password: 'x'.repeat(72) })).statusCode).toBe(
      201,
    )
    const reset = await api('PATCH', '/users/carol', { password: long })
    expect(reset.statusCode).toBe(400)
    expect(reset.json()).toMatchObject({ fields: [{ field: 'password' }] })
    expect((await postSession(host.url, 'carol', 'x'.repeat(72))).status).toBe(200)
  })

  it('answers a result over max_output_bytes with 502 resource_exhausted, not 429', async () => {
    expect((await api('POST', '/plugins', { path: path.join(root, 'big') })).statusCode).toBe(201)
    expect((await api('POST', '/plugins/big/decision', { status: 'approved' })).statusCode).toBe(200)
    const small = await fetch(`${host.url}/plugins/big/echo`, { method: 'POST', body: 'hi' })
    expect(small.status).toBe(200)
    const large = await fetch(`${host.url}/plugins/big/echo`, { method: 'POST', body: 'x'.repeat(4096) })
    expect(large.status).toBe(502)
    expect(large.headers.get('retry-after')).toBeNull()
    expect(await large.json()).toMatchObject({ code: 'resource_exhausted' })
  })

  it('answers a folder that cannot load with 422, logged as a warning without a stack', async () => {
    const from = requestLog.length
    const res = await api('POST', '/plugins', { path: path.join(root, 'no-module') })
    expect(res.statusCode).toBe(422)
    expect(res.json()).toMatchObject({
      code: 'load_failed',
      message: expect.stringMatching(/build\/plugin\.wasm/),
    })
    const lines = requestLog.slice(from)
    expect(lines.filter((l) => l.level === 'error')).toEqual([])
    const warning = lines.find((l) => l.level === 'warn')
    expect(warning).toMatchObject({
      code: 'load_failed',
      message: expect.stringMatching(/^plugin load failed: /),
    })
    expect(JSON.stringify(warning)).not.toMatch(/stack| {4}at /)
  })

  it('answers a policy of no plugin with 404, and a loaded plugin’s with the policy it runs under', async () => {
    const nope = await api('GET', '/policies/nope')
    expect(nope.statusCode).toBe(404)
    expect(nope.json()).toMatchObject({ code: 'not_found', message: expect.stringContaining('nope') })
    expect((await api('GET', '/policies/hello-grpc')).json()).toMatchObject({
      plugin: 'hello-grpc',
      status: 'pending_review',
    })
    expect((await api('GET', '/policies/stats')).json()).toMatchObject({
      plugin: 'stats',
      status: 'approved',
    })
  })

  it('shows times as ISO 8601 on the plugin, jobs and audit pages, and no next run of a disabled job', async () => {
    const iso = /<time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z">/
    const epoch = /<td>\d{13}<\/td>/
    const plugin = (
      await pageWithForm(host.server, admin.cookie, '/admin/plugins/stats', '/admin/plugins/stats/decision')
    ).html
    expect(plugin).toMatch(iso)
    expect(plugin).not.toMatch(epoch)
    const audit = (
      await host.server.app.inject({
        url: '/admin/audit',
        headers: { cookie: admin.cookie, accept: 'text/html' },
      })
    ).body
    expect(audit).toContain('hello-grpc')
    expect(audit).toMatch(iso)
    expect(audit).not.toMatch(epoch)

    const rollup = async () => {
      const { html } = await pageWithForm(
        host.server,
        admin.cookie,
        '/admin/jobs',
        '/admin/jobs/stats/rollup/run',
      )
      return html.split('data-job="stats/rollup"')[1]?.split('</tr>')[0] ?? ''
    }
    expect(await rollup()).toMatch(iso)
    expect((await api('PUT', '/jobs/stats/rollup', { enabled: false })).json()).not.toHaveProperty(
      'nextRunAt',
    )
    expect(await rollup()).toContain('<td>false</td><td>—</td>')
    expect((await api('PUT', '/jobs/stats/rollup', { enabled: true })).json()).toMatchObject({
      nextRunAt: expect.any(Number),
    })
  })

  it('shows the jobs page’s errors: an unknown job run, an enabled that is not true or false', async () => {
    const { token } = await pageWithForm(
      host.server,
      admin.cookie,
      '/admin/jobs',
      '/admin/jobs/stats/rollup/run',
    )
    const unknown = await submitForm(host.server, admin.cookie, token, '/admin/jobs/stats/nope/run')
    expect(unknown.statusCode).toBe(404)
    expect(unknown.body).toContain('<p class="error" id="error-code">not_found</p>')
    const maybe = await submitForm(host.server, admin.cookie, token, '/admin/jobs/stats/rollup/enabled', {
      enabled: 'maybe',
    })
    expect(maybe.statusCode).toBe(400)
    expect((await api('GET', '/jobs')).json()).toContainEqual(
      expect.objectContaining({ plugin: 'stats', id: 'rollup', enabled: true }),
    )
  })
})
