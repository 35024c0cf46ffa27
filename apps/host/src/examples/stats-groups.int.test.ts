import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { adminPassword, signInAt, startTestHost, type TestHost } from '../testing/test-host.js'

// A real host running examples/plugins/stats (its own process, real SQLite): its route
// GET /report/:day is for the group it declares, stats-viewers, which an administrator manages
// through the admin API; its templates replace the footer of the host's pages.
let host: TestHost

beforeAll(async () => {
  host = await startTestHost({ plugins: ['stats'], approved: ['stats'] })
}, 120_000)
afterAll(async () => {
  await host?.stop()
})

/** Signs in through the JSON session: a fetch with the session cookie and CSRF token. */
async function signIn(username: string, password: string) {
  const { cookie, csrf } = await signInAt(host.url, username, password)
  return (method: string, url: string, body?: unknown) =>
    fetch(`${host.url}${url}`, {
      method,
      headers: {
        cookie,
        'x-csrf-token': csrf,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
}

describe('the stats plugin’s group, managed through the admin API', { timeout: 60_000 }, () => {
  it('lists stats-viewers as the plugin’s group and keeps it while the plugin is loaded', async () => {
    const admin = await signIn('admin', adminPassword)
    const groups = (await (await admin('GET', '/api/v1/groups')).json()) as Array<{
      name: string
      plugin?: string
    }>
    expect(groups).toContainEqual(expect.objectContaining({ name: 'stats-viewers', plugin: 'stats' }))
    const refused = await admin('DELETE', '/api/v1/groups/stats-viewers')
    expect(refused.status).toBe(400)
    expect(await refused.json()).toMatchObject({
      code: 'invalid_argument',
      message: expect.stringContaining('stats'),
    })
  })

  it('refuses GET /report/:day to a user outside stats-viewers, and serves it once they are added', async () => {
    const admin = await signIn('admin', adminPassword)
    expect((await admin('POST', '/plugins/stats/events', { kind: 'login', day: '2026-11-24' })).status).toBe(
      201,
    )
    expect((await admin('POST', '/plugins/stats/rollup')).status).toBe(200)
    const created = await admin('POST', '/api/v1/users', { username: 'viewer', password: 'viewer-password' })
    expect(created.status).toBe(201)

    const viewer = await signIn('viewer', 'viewer-password')
    const report = () => viewer('GET', '/plugins/stats/report/2026-11-24')
    const refused = await report()
    expect(refused.status).toBe(403)
    expect(await refused.json()).toMatchObject({
      code: 'permission_denied',
      message: expect.stringContaining('stats-viewers'),
    })

    const added = await admin('PUT', '/api/v1/users/viewer/groups/stats-viewers')
    expect(added.status).toBe(200)
    expect(await added.json()).toMatchObject({ groups: ['stats-viewers'] })
    const served = await report()
    expect(served.status).toBe(200)
    expect(await served.text()).toContain('<tr><td>login</td><td>1</td></tr>')

    expect((await admin('DELETE', '/api/v1/users/viewer/groups/stats-viewers')).status).toBe(200)
    expect((await report()).status).toBe(403)
  })
})

describe('the stats plugin’s templates, rendered by the host', () => {
  it('replaces the host’s page footer with its own, which includes the template it adds', async () => {
    const admin = await signIn('admin', adminPassword)
    const page = await (await admin('GET', '/dashboard')).text()
    expect(page).toContain(
      '<footer class="layout-footer">Corral · <a href="/plugins/stats/summary">statistics</a></footer>',
    )
    const signInPage = await (await fetch(`${host.url}/login`)).text()
    expect(signInPage).toContain('<a href="/plugins/stats/summary">statistics</a></footer>')
  })
})
