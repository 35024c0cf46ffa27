import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import type { BrowserContext, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { launchChromium } from './testing/chromium.js'
import { adminPassword, appDir, startTestHost, type TestHost } from './testing/test-host.js'

// End-to-end, in Debian's chromium: a real host, real plugins (stats over gRPC, hello-wasm and
// c-wasm in WebAssembly), real SQLite. c-wasm has no policy: it stays pending review.
const artifacts = path.join(appDir, 'test-artifacts')
let host: TestHost
let chromium: Awaited<ReturnType<typeof launchChromium>> | undefined
let browser: BrowserContext

beforeAll(async () => {
  host = await startTestHost({
    plugins: ['stats', 'hello-wasm', 'c-wasm'],
    approved: ['stats', 'hello-wasm'],
  })
  chromium = await launchChromium()
  browser = chromium.browser
  await mkdir(artifacts, { recursive: true })
}, 120_000)
afterAll(async () => {
  await chromium?.close()
  await host?.stop()
})

async function signIn(page: Page, username: string, password: string): Promise<void> {
  await page.goto(`${host.url}/dashboard`)
  expect(page.url()).toMatch(/\/login\?next=/)
  await page.fill('input[name=username]', username)
  await page.fill('input[name=password]', password)
  await Promise.all([page.waitForURL(/\/dashboard$/), page.click('button[type=submit]')])
}

/** A request from the page's session, with its CSRF token: what the page's own scripts would send. */
async function postAsPage(page: Page, url: string, data?: unknown) {
  const session = await page.request.get(`${host.url}/api/v1/session`)
  const { csrfToken } = (await session.json()) as { csrfToken: string }
  return page.request.post(`${host.url}${url}`, {
    headers: { 'x-csrf-token': csrfToken },
    ...(data === undefined ? {} : { data }),
  })
}

const widgetBody = (page: Page, id: string) => page.locator(`[data-widget="${id}"] .widget-body`)

describe('the host in a browser', () => {
  let dashboard: Page

  it('signs the administrator in and shows the plugins’ widgets', async () => {
    dashboard = await browser.newPage()
    await signIn(dashboard, 'admin', adminPassword)
    const widgets = () =>
      dashboard.locator('[data-widget]').evaluateAll((all) => all.map((w) => w.getAttribute('data-widget')))
    await expect
      .poll(widgets)
      .toEqual(expect.arrayContaining(['stats/stats-overview', 'stats/stats-chart', 'hello-wasm/hello']))
    await expect
      .poll(() => widgetBody(dashboard, 'hello-wasm/hello').textContent())
      .toContain('from WebAssembly')
    await expect.poll(() => widgetBody(dashboard, 'stats/stats-overview').textContent()).not.toBe('')
    await dashboard.screenshot({ path: path.join(artifacts, 'dashboard.png'), fullPage: true })
  })

  it('refuses an unapproved plugin’s route until the administrator approves it on the plugins page', async () => {
    const page = await browser.newPage()
    const refused = await postAsPage(page, '/plugins/c-wasm/count?text=Plugins%20run%20here')
    expect(refused.status()).toBe(403)
    expect(await refused.json()).toMatchObject({ code: 'permission_denied' })

    await page.goto(`${host.url}/admin/plugins`)
    await expect
      .poll(() => page.locator('tr[data-plugin="c-wasm"] .status').textContent())
      .toBe('pending_review')
    await Promise.all([
      page.waitForURL(/\/admin\/plugins$/),
      page.click('tr[data-plugin="c-wasm"] button[name=approve]'),
    ])
    await expect.poll(() => page.locator('tr[data-plugin="c-wasm"] .status').textContent()).toBe('approved')
    await page.screenshot({ path: path.join(artifacts, 'plugins.png'), fullPage: true })

    const served = await postAsPage(page, '/plugins/c-wasm/count?text=Plugins%20run%20here')
    expect(served.status()).toBe(200)
    expect(await served.json()).toEqual({ chars: 16, words: 3, vowels: 5 })
    await page.close()
  })

  it('updates a widget through SSE when its plugin publishes an event', async () => {
    const before = await widgetBody(dashboard, 'stats/stats-overview').textContent()
    await dashboard.evaluate(() => {
      ;(globalThis as unknown as { marker: string }).marker = 'same page'
    })
    const page = await browser.newPage()
    await page.goto(`${host.url}/events`)
    for (let i = 0; i < 3; i++)
      expect((await postAsPage(page, '/plugins/stats/events', { kind: 'login' })).status()).toBe(201)
    expect((await postAsPage(page, '/plugins/stats/rollup')).status()).toBe(200)
    await expect.poll(() => widgetBody(dashboard, 'stats/stats-overview').textContent()).not.toBe(before)
    // The dashboard was not reloaded: the update came over its open stream.
    expect(await dashboard.evaluate(() => (globalThis as unknown as { marker?: string }).marker)).toBe(
      'same page',
    )
    // The events page got the plugin's event live too.
    await expect.poll(() => page.locator('#events').textContent()).toContain('stats.updated')
    await page.close()
  })

  it('reloads a plugin from the plugins page while the dashboard stays live', async () => {
    const admin = await browser.newPage()
    await admin.goto(`${host.url}/admin/plugins`)
    const [reloaded] = await Promise.all([
      admin.waitForResponse((r) => r.url().endsWith('/admin/plugins/stats/reload')),
      admin.click('tr[data-plugin="stats"] button[name=reload]'),
    ])
    expect(reloaded.status()).toBe(303)
    await admin.waitForURL(/\/admin\/plugins$/)
    expect(await admin.locator('tr[data-plugin="stats"] .state').textContent()).toBe('running')
    const info = (await (await admin.request.get(`${host.url}/api/v1/plugins/stats`)).json()) as {
      history: Array<{ reason: string }>
    }
    expect(info.history.map((h) => h.reason).join()).toMatch(/reload/)

    // The dashboard kept its stream through the reload: the reloaded plugin's widget is there, and
    // another plugin's update still arrives on the same page.
    await expect
      .poll(() => widgetBody(dashboard, 'hello-wasm/hello').textContent())
      .toContain('from WebAssembly')
    const before = await widgetBody(dashboard, 'stats/stats-overview').textContent()
    for (let i = 0; i < 2; i++)
      expect((await postAsPage(admin, '/plugins/stats/events', { kind: 'login' })).status()).toBe(201)
    expect((await postAsPage(admin, '/plugins/stats/rollup')).status()).toBe(200)
    await expect.poll(() => widgetBody(dashboard, 'stats/stats-overview').textContent()).not.toBe(before)
    expect(await dashboard.evaluate(() => (globalThis as unknown as { marker?: string }).marker)).toBe(
      'same page',
    )
    await admin.close()
  })

  it('refuses a form post without its CSRF token', async () => {
    const page = await browser.newPage()
    await page.goto(`${host.url}/dashboard`)
    await page.evaluate(() => {
      ;(globalThis as unknown as { document: { body: { innerHTML: string } } }).document.body.innerHTML =
        '<form method="post" action="/admin/plugins/stats/decision"><input name="status" value="blocked"><button id="go">go</button></form>'
    })
    const [response] = await Promise.all([
      page.waitForResponse(/\/admin\/plugins\/stats\/decision/),
      page.click('#go'),
    ])
    expect(response.status()).toBe(403)
    await expect.poll(() => page.locator('#error-code').textContent()).toBe('permission_denied')
    const stats = await (await page.request.get(`${host.url}/api/v1/plugins/stats`)).json()
    expect(stats.policy.status).toBe('approved')
    await page.close()
  })

  it('keeps a user who is not an administrator out of the admin pages and API', async () => {
    const admin = await browser.newPage()
    const created = await postAsPage(admin, '/api/v1/users', {
      username: 'viewer',
      password: 'viewer-password',
    })
    expect(created.status()).toBe(201)
    await admin.close()
    await browser.clearCookies()

    const page = await browser.newPage()
    await signIn(page, 'viewer', 'viewer-password')
    const adminPage = await page.goto(`${host.url}/admin/plugins`)
    expect(adminPage?.status()).toBe(403)
    expect(await page.locator('#error-code').textContent()).toBe('permission_denied')
    expect((await page.request.get(`${host.url}/api/v1/plugins`)).status()).toBe(403)
    const reload = await postAsPage(page, '/api/v1/plugins/stats/reload')
    expect(reload.status()).toBe(403)
    await page.close()
  })
})
