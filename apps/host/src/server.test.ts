import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { type AuditLog, type Backends, createBackends, createSqlAuditLog } from '@corral/manager'
import { PluginError } from '@corral/types'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { loadHostSecret } from './auth/host-secret.js'
import { createUsersStore } from './auth/users-store.js'
import { createLogBuffer, type LogBuffer } from './log-buffer.js'
import { createHostServer, type HostServer } from './server.js'
import { createFakeManager, type FakePlugin } from './testing/fake-manager.js'
import {
  pageWithForm as pageWithFormOn,
  streamReader,
  submitForm as submitFormOn,
} from './testing/page-requests.js'

const templatesDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../templates')
const seen: unknown[] = []
/** Finishes the calls of `notes.slow` under way. */
const finishSlow: Array<() => void> = []
/** Whether the job `notes/tidy` fails when run. */
let tidyFails = false
const plugins: FakePlugin[] = [
  {
    name: 'notes',
    requested: [{ type: 'cache', access: ['read'], scope: ['notes:*'] }],
    status: 'approved',
    routes: [
      { method: 'POST', path: '/items/:id', handler: 'save', middleware: ['auth'] },
      { method: 'GET', path: '/public', handler: 'page', middleware: [] },
      { method: 'GET', path: '/admin-only', handler: 'page', middleware: ['admin'] },
      { method: 'GET', path: '/team', handler: 'page', middleware: ['group:team'] },
      { method: 'GET', path: '/fail', handler: 'fail', middleware: [] },
      { method: 'GET', path: '/too-long', handler: 'tooLong', middleware: [] },
      { method: 'GET', path: '/slow', handler: 'slow', middleware: [] },
    ],
    errorCodes: [{ code: 'too_long', http_status: 422, message: 'too long' }],
    widgets: [{ id: 'card', title: 'Card', handler: 'card', size: 'small' }],
    jobs: [{ id: 'tidy', cron: '0 * * * *', handler: 'tidy', enabled: true }],
    functions: {
      tidy: () => {
        if (tidyFails) throw new PluginError('unavailable', 'the store is away')
      },
      save: (args) => {
        seen.push(args)
        return {
          status: 201,
          headers: { 'x-note': 'saved', 'set-cookie': 'corral_session=stolen' },
          body: { ok: true },
        }
      },
      page: () => '<p>hi</p>',
      card: () =>
        '<p class="n">7<script>steal()</script><img src="x" onerror="steal()"><a href="javascript:steal()">x</a></p>',
      fail: () => {
        throw new Error('a bug')
      },
      slow: () => new Promise((resolve) => finishSlow.push(() => resolve({ done: true }))),
      tooLong: () => {
        throw new PluginError('notes:too_long', 'at most 10 characters')
      },
    },
  },
  {
    name: 'pending',
    requested: [],
    routes: [{ method: 'GET', path: '/hello', handler: 'hello', middleware: [] }],
    functions: { hello: () => ({ hello: 'world' }) },
  },
]

let backends: Backends
let server: HostServer
let audit: AuditLog
let logs: LogBuffer
let manager: ReturnType<typeof createFakeManager>

beforeEach(async () => {
  seen.length = 0
  finishSlow.length = 0
  tidyFails = false
  backends = await createBackends({ sqlitePath: ':memory:' })
  const users = createUsersStore(backends.database)
  await users.migrate()
  await users.create({ username: 'admin', password: 'admin-password', admin: true })
  await users.create({ username: 'ann', password: 'ann-password', groups: ['team'] })
  manager = createFakeManager(plugins.map((p) => ({ ...p, jobs: p.jobs?.map((j) => ({ ...j })) })))
  audit = createSqlAuditLog(backends.database)
  logs = createLogBuffer({ log() {} })
  server = await createHostServer({
    manager,
    users,
    database: backends.database,
    audit,
    logs,
    secret: await loadHostSecret(backends.database),
    templatesDir,
    logger: process.env.HOST_TEST_LOG === '1' ? { level: 'info' } : false,
    bodyLimit: 4096,
    loginsPerMinute: 5,
  })
})
afterEach(async () => {
  await server.close()
  await backends.close()
})

/** Signs in through the JSON session endpoint: the cookie header and CSRF token of later calls. */
async function signIn(username: string, password: string) {
  const res = await server.app.inject({
    method: 'POST',
    url: '/api/v1/session',
    payload: { username, password },
  })
  expect(res.statusCode).toBe(200)
  const cookie = res.cookies.map((c) => `${c.name}=${c.value}`).join('; ')
  return { cookie, csrf: (res.json() as { csrfToken: string }).csrfToken }
}

/** A page's HTML and CSRF token, on this test's server. */
const pageWithForm = (cookie: string, url: string, action: string) =>
  pageWithFormOn(server, cookie, url, action)
/** Posts a page's form on this test's server. */
const submitForm = (cookie: string, token: string, action: string, fields?: Record<string, string>) =>
  submitFormOn(server, cookie, token, action, fields)

/** A page as a browser signed in with `cookie` asks for it. */
const pageAs = (cookie: string, url: string) =>
  server.app.inject({ url, headers: { cookie, accept: 'text/html' } })

/** The HTML of one table row of a page, found by its `data-…` attribute. */
function rowOf(html: string, marker: string): string {
  const start = html.indexOf(marker)
  expect(start).toBeGreaterThan(-1)
  return html.slice(start, html.indexOf('</tr>', start))
}

describe('plugin routes', () => {
  it('turns a request into a call with params, query, body and user, and the answer into the response', async () => {
    const { cookie, csrf } = await signIn('ann', 'ann-password')
    const res = await server.app.inject({
      method: 'POST',
      url: '/plugins/notes/items/42?draft=1&draft=2',
      headers: { cookie, 'x-csrf-token': csrf, authorization: 'Bearer secret' },
      payload: { text: 'hello' },
    })
    expect(res.statusCode).toBe(201)
    expect(res.json()).toEqual({ ok: true })
    expect(res.headers['x-note']).toBe('saved')
    // The plugin may not set the host's cookies.
    expect(res.headers['set-cookie']).toBeUndefined()
    expect(seen).toEqual([
      expect.objectContaining({
        method: 'POST',
        path: '/items/42',
        params: { id: '42' },
        query: { draft: '1' },
        body: '{"text":"hello"}',
        user: { id: 'ann', name: 'ann', admin: false, groups: ['team'] },
      }),
    ])
    // Credentials stay with the host.
    const { headers } = seen[0] as { headers: Record<string, string> }
    expect(headers.cookie).toBeUndefined()
    expect(headers.authorization).toBeUndefined()
    expect(headers['x-csrf-token']).toBeUndefined()
  })

  it('serves a plugin’s HTML in a sandbox', async () => {
    const res = await server.app.inject({ method: 'GET', url: '/plugins/notes/public' })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toContain('text/html')
    expect(res.headers['content-security-policy']).toContain('sandbox')
  })

  it('runs the route checks: auth, admin, group', async () => {
    expect(
      (await server.app.inject({ method: 'POST', url: '/plugins/notes/items/1', payload: {} })).statusCode,
    ).toBe(403)
    const ann = await signIn('ann', 'ann-password')
    expect(
      (await server.app.inject({ url: '/plugins/notes/admin-only', headers: { cookie: ann.cookie } })).json(),
    ).toMatchObject({
      code: 'permission_denied',
    })
    expect(
      (await server.app.inject({ url: '/plugins/notes/team', headers: { cookie: ann.cookie } })).statusCode,
    ).toBe(200)
    expect((await server.app.inject({ url: '/plugins/notes/team' })).statusCode).toBe(403)
  })

  it('refuses the routes of a plugin pending review until an administrator approves it', async () => {
    const refused = await server.app.inject({ url: '/plugins/pending/hello' })
    expect(refused.statusCode).toBe(403)
    expect(refused.json()).toMatchObject({ code: 'permission_denied' })
    const admin = await signIn('admin', 'admin-password')
    const decided = await server.app.inject({
      method: 'POST',
      url: '/api/v1/plugins/pending/decision',
      headers: { cookie: admin.cookie, 'x-csrf-token': admin.csrf },
      payload: { status: 'approved' },
    })
    expect(decided.statusCode).toBe(200)
    const served = await server.app.inject({ url: '/plugins/pending/hello' })
    expect(served.statusCode).toBe(200)
    expect(served.json()).toEqual({ hello: 'world' })
  })

  it('maps a plugin’s own error code to its declared status, and unknown failures to 500', async () => {
    const declared = await server.app.inject({ url: '/plugins/notes/too-long' })
    expect(declared.statusCode).toBe(422)
    expect(declared.json()).toEqual({ code: 'notes:too_long', message: 'at most 10 characters' })
    const failing = await server.app.inject({ url: '/plugins/notes/fail' })
    expect(failing.statusCode).toBe(500)
    expect(failing.json()).toEqual({ code: 'internal', message: 'internal error (see the host log)' })
    expect((await server.app.inject({ url: '/plugins/notes/nothing' })).json()).toMatchObject({
      code: 'not_found',
    })
  })

  it('caps the request body', async () => {
    const { cookie, csrf } = await signIn('ann', 'ann-password')
    const res = await server.app.inject({
      method: 'POST',
      url: '/plugins/notes/items/1',
      headers: { cookie, 'x-csrf-token': csrf },
      payload: { text: 'x'.repeat(10_000) },
    })
    expect(res.statusCode).toBe(413)
    expect(res.json()).toMatchObject({ code: 'resource_exhausted' })
    expect(seen).toEqual([])
  })
})

describe('sessions and CSRF', () => {
  it('refuses a state-changing call of a session without its CSRF token', async () => {
    const { cookie } = await signIn('ann', 'ann-password')
    const res = await server.app.inject({
      method: 'POST',
      url: '/plugins/notes/items/1',
      headers: { cookie },
      payload: {},
    })
    expect(res.statusCode).toBe(403)
    expect(seen).toEqual([])
  })

  it('refuses a CSRF token issued to another session', async () => {
    const first = await signIn('ann', 'ann-password')
    const second = await signIn('ann', 'ann-password')
    const res = await server.app.inject({
      method: 'POST',
      url: '/plugins/notes/items/1',
      headers: { cookie: second.cookie, 'x-csrf-token': first.csrf },
      payload: {},
    })
    expect(res.statusCode).toBe(403)
  })

  it('refuses a token that passed before once its session or its secret cookie is another', async () => {
    const first = await signIn('ann', 'ann-password')
    const second = await signIn('ann', 'ann-password')
    const post = (cookie: string, token: string) =>
      server.app.inject({
        method: 'POST',
        url: '/plugins/notes/items/1',
        headers: { cookie, 'x-csrf-token': token },
        payload: {},
      })
    const cookieOf = (header: string, name: string) =>
      header.split('; ').find((pair) => pair.startsWith(`${name}=`)) ?? ''
    expect((await post(first.cookie, first.csrf)).statusCode).toBe(201)
    expect((await post(first.cookie, first.csrf)).statusCode).toBe(201)
    const otherSession = `${cookieOf(second.cookie, 'corral_session')}; ${cookieOf(first.cookie, '_csrf')}`
    expect((await post(otherSession, first.csrf)).statusCode).toBe(403)
    const otherSecret = `${cookieOf(first.cookie, 'corral_session')}; ${cookieOf(second.cookie, '_csrf')}`
    expect((await post(otherSecret, first.csrf)).statusCode).toBe(403)
    expect(seen).toHaveLength(2)
  })

  it('signs in through the form only with the form’s token, and sets an httpOnly SameSite cookie', async () => {
    const form = await server.app.inject({ url: '/login', headers: { accept: 'text/html' } })
    const token = /name="_csrf" value="([^"]+)"/.exec(form.body)?.[1] ?? ''
    const csrfCookie = form.cookies.map((c) => `${c.name}=${c.value}`).join('; ')
    const without = await server.app.inject({
      method: 'POST',
      url: '/login',
      headers: { cookie: csrfCookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'username=admin&password=admin-password',
    })
    expect(without.statusCode).toBe(403)
    const withToken = await server.app.inject({
      method: 'POST',
      url: '/login',
      headers: { cookie: csrfCookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: `username=admin&password=admin-password&_csrf=${encodeURIComponent(token)}&next=//evil.example`,
    })
    expect(withToken.statusCode).toBe(303)
    expect(withToken.headers.location).toBe('/')
    const session = withToken.cookies.find((c) => c.name === 'corral_session')
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/' })
  })

  it('rate-limits logins', async () => {
    const codes: number[] = []
    for (let i = 0; i < 7; i++) {
      const res = await server.app.inject({
        method: 'POST',
        url: '/api/v1/session',
        payload: { username: 'ann', password: 'wrong-password' },
      })
      codes.push(res.statusCode)
    }
    expect(codes.slice(0, 5)).toEqual([401, 401, 401, 401, 401])
    expect(codes.slice(5)).toEqual([429, 429])
  })
})

describe('pages', () => {
  it('shows a widget’s HTML without anything that runs', async () => {
    const { cookie } = await signIn('ann', 'ann-password')
    const html = (await pageAs(cookie, '/dashboard')).body
    expect(html).toContain('<p class="n">7<img src="x" /><a>x</a></p>')
    expect(html).not.toContain('steal()')
  })

  it('shows the host menu of the user’s location: the admin items to administrators only', async () => {
    const page = async (who: string, password: string) => {
      const { cookie } = await signIn(who, password)
      return (await pageAs(cookie, '/dashboard')).body
    }
    const admin = await page('admin', 'admin-password')
    expect(admin).toContain('href="/admin/plugins"')
    expect(admin).toContain('href="/events"')
    const ann = await page('ann', 'ann-password')
    expect(ann).toContain('href="/events"')
    expect(ann).not.toContain('href="/admin/plugins"')
  })
})

describe('admin API', () => {
  it('is for administrators only', async () => {
    expect((await server.app.inject({ url: '/api/v1/plugins' })).statusCode).toBe(403)
    const ann = await signIn('ann', 'ann-password')
    const res = await server.app.inject({ url: '/api/v1/plugins', headers: { cookie: ann.cookie } })
    expect(res.statusCode).toBe(403)
    expect(res.json()).toMatchObject({ code: 'permission_denied' })
    const page = await pageAs(ann.cookie, '/admin/plugins')
    expect(page.statusCode).toBe(403)
  })

  it('lists plugins with requested and granted permissions', async () => {
    const admin = await signIn('admin', 'admin-password')
    const res = await server.app.inject({ url: '/api/v1/plugins', headers: { cookie: admin.cookie } })
    expect(res.statusCode).toBe(200)
    expect((res.json() as Array<{ name: string }>).map((p) => p.name)).toEqual(['notes', 'pending'])
  })

  it('answers an unknown plugin with 404 not_found', async () => {
    const admin = await signIn('admin', 'admin-password')
    const res = await server.app.inject({
      method: 'POST',
      url: '/api/v1/plugins/ghost/reload',
      headers: { cookie: admin.cookie, 'x-csrf-token': admin.csrf },
    })
    expect(res.statusCode).toBe(404)
    expect(res.json()).toMatchObject({ code: 'not_found', message: expect.stringContaining('ghost') })
  })

  it('answers a bad grant with 400 and the field that is wrong', async () => {
    const admin = await signIn('admin', 'admin-password')
    const res = await server.app.inject({
      method: 'PUT',
      url: '/api/v1/policies/notes',
      headers: { cookie: admin.cookie, 'x-csrf-token': admin.csrf },
      payload: { status: 'approved', grants: [{ type: 'teleport', scope: ['*'] }] },
    })
    expect(res.statusCode).toBe(400)
    const body = res.json() as { code: string; fields: Array<{ field: string }> }
    expect(body.code).toBe('invalid_argument')
    expect(body.fields.map((f) => f.field).join()).toContain('grants')
  })

  it('answers malformed JSON and schema mismatches with 400 invalid_argument', async () => {
    const admin = await signIn('admin', 'admin-password')
    const headers = { cookie: admin.cookie, 'x-csrf-token': admin.csrf, 'content-type': 'application/json' }
    const malformed = await server.app.inject({
      method: 'PUT',
      url: '/api/v1/policies/notes',
      headers,
      payload: '{"status": ',
    })
    expect(malformed.statusCode).toBe(400)
    expect(malformed.json()).toMatchObject({ code: 'invalid_argument' })
    const mismatch = await server.app.inject({
      method: 'POST',
      url: '/api/v1/plugins/notes/decision',
      headers,
      payload: JSON.stringify({ status: 'maybe' }),
    })
    expect(mismatch.statusCode).toBe(400)
    expect(mismatch.json()).toMatchObject({
      code: 'invalid_argument',
      fields: [expect.objectContaining({ field: 'status' })],
    })
    const badName = await server.app.inject({ url: '/api/v1/plugins/Not_A_Name', headers })
    expect(badName.statusCode).toBe(400)
  })

  it('describes itself in OpenAPI', async () => {
    const res = await server.app.inject({ url: '/api/v1/openapi.json' })
    const doc = res.json() as { openapi: string; paths: Record<string, unknown> }
    expect(doc.openapi).toMatch(/^3\./)
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/api/v1/plugins/{name}/reload', '/api/v1/policies/{name}', '/api/v1/audit']),
    )
  })
})

describe('admin: lifecycle and grants', () => {
  it('unloads a plugin from the plugins page: it leaves the list and its routes go', async () => {
    const admin = await signIn('admin', 'admin-password')
    const { token } = await pageWithForm(admin.cookie, '/admin/plugins', '/admin/plugins/pending/unload')
    const unloaded = await submitForm(admin.cookie, token, '/admin/plugins/pending/unload')
    expect(unloaded.statusCode).toBe(303)
    expect(unloaded.headers.location).toBe('/admin/plugins')
    const page = await pageAs(admin.cookie, '/admin/plugins')
    expect(page.body).toContain('data-plugin="notes"')
    expect(page.body).not.toContain('data-plugin="pending"')
    expect((await server.app.inject({ url: '/plugins/pending/hello' })).statusCode).toBe(404)
  })

  it('unloads a plugin through the API', async () => {
    const admin = await signIn('admin', 'admin-password')
    const headers = { cookie: admin.cookie, 'x-csrf-token': admin.csrf }
    const res = await server.app.inject({ method: 'POST', url: '/api/v1/plugins/notes/unload', headers })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({ name: 'notes', state: 'stopped' })
    const list = await server.app.inject({ url: '/api/v1/plugins', headers })
    expect((list.json() as Array<{ name: string }>).map((p) => p.name)).toEqual(['pending'])
    expect((await server.app.inject({ url: '/plugins/notes/public' })).statusCode).toBe(404)
  })

  it('restricts a plugin to the grants typed on its page', async () => {
    const admin = await signIn('admin', 'admin-password')
    const { html, token } = await pageWithForm(
      admin.cookie,
      '/admin/plugins/notes',
      '/admin/plugins/notes/decision',
    )
    expect(html).toContain('value="restricted"')
    const decided = await submitForm(admin.cookie, token, '/admin/plugins/notes/decision', {
      status: 'restricted',
      grants: '- type: cache\n  access: [read]\n  scope: ["notes:public"]\n',
    })
    expect(decided.statusCode).toBe(303)
    const policy = await server.app.inject({
      url: '/api/v1/policies/notes',
      headers: { cookie: admin.cookie },
    })
    expect(policy.json()).toMatchObject({
      status: 'restricted',
      grants: [{ type: 'cache', access: ['read'], scope: ['notes:public'] }],
    })
    const page = await pageAs(admin.cookie, '/admin/plugins/notes')
    expect(page.body).toContain('policy: <strong>restricted</strong>')
    expect(page.body).toContain('notes:public')
    // A restricted plugin keeps serving its routes, within its smaller grant.
    expect((await server.app.inject({ url: '/plugins/notes/public' })).statusCode).toBe(200)
  })

  it('restricts a plugin through the API, and refuses grants that are not a list on the page', async () => {
    const admin = await signIn('admin', 'admin-password')
    const res = await server.app.inject({
      method: 'POST',
      url: '/api/v1/plugins/notes/decision',
      headers: { cookie: admin.cookie, 'x-csrf-token': admin.csrf },
      payload: { status: 'restricted', grants: [{ type: 'cache', access: ['read'], scope: ['notes:a'] }] },
    })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({
      plugin: 'notes',
      status: 'restricted',
      grants: [{ type: 'cache', access: ['read'], scope: ['notes:a'] }],
    })
    const { token } = await pageWithForm(
      admin.cookie,
      '/admin/plugins/notes',
      '/admin/plugins/notes/decision',
    )
    const bad = await submitForm(admin.cookie, token, '/admin/plugins/notes/decision', {
      status: 'restricted',
      grants: 'type: cache',
    })
    expect(bad.statusCode).toBe(400)
    const stored = await server.app.inject({
      url: '/api/v1/policies/notes',
      headers: { cookie: admin.cookie },
    })
    expect(stored.json()).toMatchObject({ grants: [{ scope: ['notes:a'] }] })
  })
})

describe('admin: jobs', () => {
  it('runs a job now and switches it off and on from the jobs page, which shows the last run', async () => {
    const admin = await signIn('admin', 'admin-password')
    const jobs = async () =>
      rowOf(
        (await pageWithForm(admin.cookie, '/admin/jobs', '/admin/jobs/notes/tidy/run')).html,
        'data-job="notes/tidy"',
      )
    const { token } = await pageWithForm(admin.cookie, '/admin/jobs', '/admin/jobs/notes/tidy/run')
    expect(await jobs()).toContain('<code>0 * * * *</code>')
    expect(await jobs()).not.toMatch(/ok \(|failed/)

    expect((await submitForm(admin.cookie, token, '/admin/jobs/notes/tidy/run')).statusCode).toBe(303)
    const at = '<time datetime="\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z">'
    expect(await jobs()).toMatch(new RegExp(`<td>ok \\(\\d+ ms\\) at ${at}`))
    tidyFails = true
    await submitForm(admin.cookie, token, '/admin/jobs/notes/tidy/run')
    expect(await jobs()).toMatch(new RegExp(`<td>failed: unavailable \\(\\d+ ms\\) at ${at}`))

    expect(await jobs()).toContain('<td>true</td>')
    const off = await submitForm(admin.cookie, token, '/admin/jobs/notes/tidy/enabled', { enabled: 'false' })
    expect(off.statusCode).toBe(303)
    expect(await jobs()).toContain('<td>false</td>')
    expect(await jobs()).toContain('<button>Enable</button>')
    await submitForm(admin.cookie, token, '/admin/jobs/notes/tidy/enabled', { enabled: 'true' })
    expect(await jobs()).toContain('<td>true</td>')
  })

  it('shows what the jobs page refuses: an unknown job to run, an enabled that is not true or false', async () => {
    const admin = await signIn('admin', 'admin-password')
    const { token } = await pageWithForm(admin.cookie, '/admin/jobs', '/admin/jobs/notes/tidy/run')
    const unknown = await submitForm(admin.cookie, token, '/admin/jobs/notes/nope/run')
    expect(unknown.statusCode).toBe(404)
    expect(unknown.body).toContain('<p class="error" id="error-code">not_found</p>')
    expect(unknown.body).toContain('no job nope of notes')
    const maybe = await submitForm(admin.cookie, token, '/admin/jobs/notes/tidy/enabled', {
      enabled: 'maybe',
    })
    expect(maybe.statusCode).toBe(400)
    expect(maybe.body).toContain('enabled is true or false')
    const tidy = rowOf(
      (await pageWithForm(admin.cookie, '/admin/jobs', '/admin/jobs/notes/tidy/run')).html,
      'data-job="notes/tidy"',
    )
    expect(tidy).toContain('<td>true</td>')
  })

  it('runs a job now and enables and disables it through the API', async () => {
    const admin = await signIn('admin', 'admin-password')
    const headers = { cookie: admin.cookie, 'x-csrf-token': admin.csrf }
    const run = await server.app.inject({ method: 'POST', url: '/api/v1/jobs/notes/tidy/run', headers })
    expect(run.statusCode).toBe(200)
    expect(run.json()).toMatchObject({ ok: true })
    tidyFails = true
    const failed = await server.app.inject({ method: 'POST', url: '/api/v1/jobs/notes/tidy/run', headers })
    expect(failed.json()).toMatchObject({ ok: false, error: { code: 'unavailable' } })

    const off = await server.app.inject({
      method: 'PUT',
      url: '/api/v1/jobs/notes/tidy',
      headers,
      payload: { enabled: false },
    })
    expect(off.statusCode).toBe(200)
    expect(off.json()).toMatchObject({ plugin: 'notes', id: 'tidy', enabled: false })
    const list = await server.app.inject({ url: '/api/v1/jobs', headers })
    expect(list.json()).toEqual([
      expect.objectContaining({
        id: 'tidy',
        enabled: false,
        lastRun: expect.objectContaining({ ok: false }),
      }),
    ])
    const unknown = await server.app.inject({
      method: 'PUT',
      url: '/api/v1/jobs/notes/sweep',
      headers,
      payload: { enabled: true },
    })
    expect(unknown.statusCode).toBe(404)
    expect(unknown.json()).toMatchObject({ code: 'not_found' })
  })
})

describe('admin: audit', () => {
  beforeEach(async () => {
    const refusal = { code: 'permission_denied', message: 'not granted' }
    await audit.record({ at: 1000, plugin: 'notes', method: 'cache.get', ...refusal, detail: 'notes:a' })
    await audit.record({ at: 2000, plugin: 'notes', method: 'db.query', ...refusal, detail: 'users' })
    await audit.record({
      at: 3000,
      plugin: 'pending',
      method: 'cache.get',
      code: 'rate_limited',
      message: 'slow down',
    })
  })

  it('filters refused host calls by plugin, method and code over the API', async () => {
    const admin = await signIn('admin', 'admin-password')
    const list = async (query: string) => {
      const res = await server.app.inject({ url: `/api/v1/audit${query}`, headers: { cookie: admin.cookie } })
      expect(res.statusCode).toBe(200)
      return (res.json() as Array<{ detail: string; plugin: string }>).map(
        (e) => `${e.plugin}/${e.detail ?? ''}`,
      )
    }
    expect(await list('')).toEqual(['pending/', 'notes/users', 'notes/notes:a'])
    expect(await list('?plugin=notes')).toEqual(['notes/users', 'notes/notes:a'])
    expect(await list('?plugin=notes&method=cache.get')).toEqual(['notes/notes:a'])
    expect(await list('?code=rate_limited')).toEqual(['pending/'])
    expect(await list('?plugin=notes&limit=1')).toEqual(['notes/users'])
    const bad = await server.app.inject({ url: '/api/v1/audit?limit=0', headers: { cookie: admin.cookie } })
    expect(bad.statusCode).toBe(400)
    expect(bad.json()).toMatchObject({ code: 'invalid_argument' })
  })

  it('filters them on the audit page', async () => {
    const admin = await signIn('admin', 'admin-password')
    const page = await pageAs(admin.cookie, '/admin/audit?plugin=notes&method=cache.get&code=')
    expect(page.statusCode).toBe(200)
    expect(page.body).toContain('name="plugin" placeholder="plugin" value="notes"')
    const table = page.body.slice(page.body.indexOf('<table id="audit">'))
    expect(table).toContain('<td>notes:a</td>')
    expect(table).not.toContain('<td>users</td>')
    expect(table).not.toContain('slow down')
  })
})

describe('live log view', () => {
  it('streams a plugin’s log lines to administrators as log:<plugin> frames', async () => {
    const url = await server.app.listen({ port: 0, host: '127.0.0.1' })
    const admin = await signIn('admin', 'admin-password')
    const ann = await signIn('ann', 'ann-password')
    const adminStream = streamReader(
      await fetch(`${url}/events/stream`, { headers: { cookie: admin.cookie } }),
    )
    const annStream = streamReader(await fetch(`${url}/events/stream`, { headers: { cookie: ann.cookie } }))
    await adminStream.until(': connected')
    await annStream.until(': connected')

    logs.logger.log('warn', 'tidied 3 notes', { plugin: 'notes' })
    const frame = await adminStream.until('tidied 3 notes')
    expect(frame).toContain('event: log:notes\ndata: <li class="log log-warn">')

    // Every stream gets the next event; a user who is not an administrator never got the log line.
    manager.emit({ type: 'plugin.event', plugin: 'notes', event: 'notes.saved', data: {}, at: Date.now() })
    expect(await annStream.until('event: event')).not.toContain('log:notes')
    await adminStream.cancel()
    await annStream.cancel()
  })
})

describe('operations', () => {
  it('answers the probes and serves metrics', async () => {
    expect((await server.app.inject({ url: '/healthz' })).statusCode).toBe(200)
    expect((await server.app.inject({ url: '/readyz' })).json()).toMatchObject({ status: 'ready' })
    await server.app.inject({ url: '/plugins/notes/public' })
    const metrics = await server.app.inject({ url: '/metrics' })
    expect(metrics.body).toContain('corral_plugin_calls_total{plugin="notes"}')
    expect(metrics.body).toContain('corral_plugin_route_seconds_count{plugin="notes"} 1')
  })
})

describe('graceful shutdown', () => {
  it('finishes the requests under way, ends live streams and takes no new request', async () => {
    const url = await server.app.listen({ port: 0, host: '127.0.0.1' })
    const admin = await signIn('admin', 'admin-password')
    const stream = await fetch(`${url}/events/stream`, { headers: { cookie: admin.cookie } })
    expect(stream.headers.get('content-type')).toContain('text/event-stream')
    const slow = fetch(`${url}/plugins/notes/slow`)
    await vi.waitFor(() => expect(finishSlow).toHaveLength(1))

    const closed = server.close()
    // The stream ends at once, so that it does not hold the shutdown up.
    expect(await stream.text()).toContain(': connected')
    await expect(fetch(`${url}/healthz`)).rejects.toThrow()
    for (const finish of finishSlow) finish()
    const answered = await slow
    expect(answered.status).toBe(200)
    expect(await answered.json()).toEqual({ done: true })
    await closed
  })
})
