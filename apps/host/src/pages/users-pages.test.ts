import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type FakeHost, startFakeHost } from '../testing/fake-host.js'

// The users page over the in-memory manager, driven as a browser does: read the page, post its forms.
let host: FakeHost

beforeEach(async () => {
  host = await startFakeHost()
})
afterEach(async () => {
  await host.close()
})

/** The administrator's page session: the page's HTML, and a poster of its forms with its token. */
async function adminPage() {
  const { cookie } = await host.signIn('admin', 'admin-password')
  const html = async () => {
    const res = await host.server.app.inject({
      url: '/admin/users',
      headers: { cookie, accept: 'text/html' },
    })
    expect(res.statusCode).toBe(200)
    return res.body
  }
  const post = async (url: string, fields: Record<string, string>, withToken = true) => {
    const token = /name="_csrf" value="([^"]+)"/.exec(await html())?.[1] ?? ''
    const form = new URLSearchParams({ ...fields, ...(withToken ? { _csrf: token } : {}) })
    return host.server.app.inject({
      method: 'POST',
      url,
      headers: { cookie, accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded' },
      payload: form.toString(),
    })
  }
  return { html, post }
}

describe('the users page', () => {
  it('lists users and groups, with the plugin that declares each group and no delete for it', async () => {
    const page = await adminPage()
    const html = await page.html()
    expect(html).toContain('<tr data-user="admin">')
    expect(html).toContain('<tr data-user="bob">')
    expect(html).toMatch(/<tr data-group="team">[\s\S]*plugin notes[\s\S]*?<\/tr>/)
    expect(html).not.toContain('action="/admin/groups/team/delete"')
    // In the administrators' menu.
    expect(html).toContain('href="/admin/users"')
  })

  it('adds a user to a group through its form, which opens the group’s route', async () => {
    const bob = await host.signIn('bob', 'bob-password')
    const team = () => host.server.app.inject({ url: '/plugins/notes/team', headers: { cookie: bob.cookie } })
    expect((await team()).statusCode).toBe(403)
    const page = await adminPage()
    const added = await page.post('/admin/users/bob/groups', { group: 'team' })
    expect(added.statusCode).toBe(303)
    expect(added.headers.location).toBe('/admin/users')
    expect((await team()).statusCode).toBe(200)
    expect(await page.html()).toContain('action="/admin/users/bob/groups/team/remove"')

    await page.post('/admin/users/bob/groups/team/remove', {})
    expect((await team()).statusCode).toBe(403)
  })

  it('refuses a form post without the page’s CSRF token', async () => {
    const page = await adminPage()
    const res = await page.post('/admin/users/bob/admin', { admin: 'true' }, false)
    expect(res.statusCode).toBe(403)
    expect((await host.users.get('bob'))?.admin).toBe(false)
  })

  it('creates users and groups, grants and revokes admin, disables, resets a password, deletes a group', async () => {
    const page = await adminPage()
    expect(
      (await page.post('/admin/users', { username: 'cleo', password: 'cleo-password' })).statusCode,
    ).toBe(303)
    expect((await page.post('/admin/groups', { name: 'ops', description: 'On call.' })).statusCode).toBe(303)
    await page.post('/admin/users/cleo/groups', { group: 'ops' })
    await page.post('/admin/users/cleo/admin', { admin: 'true' })
    expect(await host.users.get('cleo')).toEqual({
      username: 'cleo',
      admin: true,
      disabled: false,
      groups: ['ops'],
    })
    await page.post('/admin/users/cleo/admin', { admin: 'false' })
    await page.post('/admin/users/cleo/disabled', { disabled: 'true' })
    expect(await host.users.get('cleo')).toMatchObject({ admin: false, disabled: true })
    expect(await host.users.authenticate('cleo', 'cleo-password')).toBeUndefined()
    await page.post('/admin/users/cleo/disabled', { disabled: 'false' })
    await page.post('/admin/users/cleo/password', { password: 'new-cleo-password' })
    expect(await host.users.authenticate('cleo', 'new-cleo-password')).toMatchObject({ username: 'cleo' })
    expect(await page.html()).toContain('action="/admin/groups/ops/delete"')
    await page.post('/admin/groups/ops/delete', {})
    expect((await host.users.groups()).map((g) => g.name)).toEqual(['team'])
  })

  it('shows what it refuses on the error page: the last administrator, a plugin’s group, bad input', async () => {
    const page = await adminPage()
    const last = await page.post('/admin/users/admin/admin', { admin: 'false' })
    expect(last.statusCode).toBe(400)
    expect(last.headers['content-type']).toContain('text/html')
    expect(last.body).toContain('last administrator')
    expect((await host.users.get('admin'))?.admin).toBe(true)
    expect((await page.post('/admin/groups/team/delete', {})).statusCode).toBe(400)
    expect((await page.post('/admin/groups', { name: 'Not A Name' })).statusCode).toBe(400)
    expect((await page.post('/admin/users/bob/groups', { group: 'ghosts' })).statusCode).toBe(404)
    expect((await page.post('/admin/users/bob/password', { password: 'short' })).statusCode).toBe(400)
  })

  it('is for administrators only', async () => {
    const bob = await host.signIn('bob', 'bob-password')
    const res = await host.server.app.inject({
      url: '/admin/users',
      headers: { cookie: bob.cookie, accept: 'text/html' },
    })
    expect(res.statusCode).toBe(403)
    const post = await host.server.app.inject({
      method: 'POST',
      url: '/admin/users/bob/admin',
      headers: { cookie: bob.cookie, 'x-csrf-token': bob.csrf },
      payload: { admin: 'true' },
    })
    expect(post.statusCode).toBe(403)
    expect((await host.users.get('bob'))?.admin).toBe(false)
  })
})
