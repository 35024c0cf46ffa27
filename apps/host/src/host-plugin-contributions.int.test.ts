import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { createPluginManager } from '@corral/manager'
import { parsePolicy } from '@corral/manifest'
import { corralWat, wat2wasm } from '@corral/wasm-runner/testing'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { signIn } from './testing/fake-host.js'
import { pageWithForm, streamReader, submitForm } from './testing/page-requests.js'
import { adminPassword, examplesDir, startTestHost, type TestHost } from './testing/test-host.js'

// A real host over real WASM plugins that use what a registration gives the host's pages:
// - `pages-demo`: hello-wasm's module (built from source by the build) under a manifest that adds a
//   template and overrides the host's events page, translates the host's words into German (the
//   `host` namespace), nests menu items and hides the host's `events` item, names a landing page,
//   and shows two widgets, one refreshed every second. It asks for the cache and is granted nothing.
// - `trapper` and `spinner`: WAT modules compiled here, one that traps (restarts, then quarantine)
//   and one that never returns (the request time cap).
const demoManifest = `
name: pages-demo
version: 0.1.0
runtime: wasm
entry:
  wasm: plugin.wasm
resources:
  call_timeout: 2s
  permissions:
    - type: cache
      access: [read, write]
      scope: ["greetings:*"]
provides:
  routes:
    - { method: GET, path: /hello, handler: widget, middleware: [auth] }
    - { method: POST, path: /greet, handler: greet, middleware: [] }
  widgets:
    - { id: big, title: Big one, handler: widget, size: large }
    - { id: ticker, title: Ticker, handler: widget, size: small, refresh_seconds: 1 }
  templates:
    - name: pages-demo/note
      content: '<p class="demo-note">Seen by {{ who }}</p>'
    - name: events
      override: true
      content: >-
        {% layout 'layout' %}{% block content %}<h1 id="demo-events">{{ s.events }}</h1>
        {% render 'pages-demo/note', who: user.username %}{% endblock %}
  i18n:
    namespace: host
    languages: [en, de]
    translations:
      en: { demoMenu: Demo, demoHello: Hello page }
      de: { demoMenu: Vorführung, demoHello: Grußseite, dashboard: Übersicht }
  menu_items:
    - id: demo
      label: "host:demoMenu"
      location: admin
      order: 60
      children:
        - { id: demo.hello, label: "host:demoHello", location: admin, path: /plugins/pages-demo/hello }
    - { id: demo.team, label: Team page, location: agent, path: /plugins/pages-demo/hello, group: demo-team }
  groups:
    - { name: demo-team, description: Sees the team page. }
  hidden_menu_items: [events]
  landing_page: /hello
`
const watManifest = (name: string, fn: string) => `
name: ${name}
version: 0.1.0
runtime: wasm
entry:
  wasm: plugin.wasm
resources:
  call_timeout: 5s
provides:
  routes:
    - { method: GET, path: /${fn}, handler: ${fn} }
    - { method: GET, path: /echo, handler: echo }
`

async function writePlugin(dir: string, manifest: string, wasm: Uint8Array | string): Promise<void> {
  await mkdir(dir, { recursive: true })
  await writeFile(path.join(dir, 'plugin.yaml'), manifest)
  if (typeof wasm === 'string') await copyFile(wasm, path.join(dir, 'plugin.wasm'))
  else await writeFile(path.join(dir, 'plugin.wasm'), wasm)
}

/** The value of one series in Prometheus' text format; 0 when the series is not there yet. */
function sample(metrics: string, series: string): number {
  const line = metrics.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? 0 : Number(line.slice(series.length + 1))
}

let root: string
let host: TestHost
let admin: { cookie: string; csrf: string }

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'corral-contributions-'))
  const pluginsDir = path.join(root, 'plugins')
  await writePlugin(
    path.join(pluginsDir, 'pages-demo'),
    demoManifest,
    path.join(examplesDir, 'hello-wasm/build/plugin.wasm'),
  )
  await writePlugin(
    path.join(pluginsDir, 'trapper'),
    watManifest('trapper', 'trap'),
    await wat2wasm(corralWat('(func (export "trap") (param i32 i32) (result i64) unreachable)')),
  )
  await writePlugin(
    path.join(pluginsDir, 'spinner'),
    watManifest('spinner', 'spin'),
    await wat2wasm(
      corralWat(
        '(func (export "spin") (param i32 i32) (result i64) (loop $forever (br $forever)) (i64.const 0))',
      ),
    ),
  )
  host = await startTestHost({
    plugins: [],
    approved: [],
    pluginsDir,
    policies: ['pages-demo', 'trapper', 'spinner'].map((plugin) =>
      parsePolicy({ plugin, status: 'approved', grants: [] }),
    ),
    // A second crash quarantines a plugin.
    createManager: (options) =>
      createPluginManager({
        ...options,
        watch: false,
        restart: { maxRestarts: 1, restartWindowMs: 600_000, initialBackoffMs: 10, maxBackoffMs: 50 },
      }),
    server: { callTimeoutMs: 300 },
  })
  admin = await signIn(host.server, 'admin', adminPassword)
}, 120_000)

afterAll(async () => {
  await host?.stop()
  await rm(root, { recursive: true, force: true })
})

const get = (url: string, headers: Record<string, string> = {}) =>
  host.server.app.inject({ url, headers: { cookie: admin.cookie, accept: 'text/html', ...headers } })

describe('what plugins add to the host’s pages', () => {
  it('loads the three plugins', () => {
    expect(host.manager.list().map((p) => [p.name, p.state])).toEqual(
      expect.arrayContaining([
        ['pages-demo', 'running'],
        ['trapper', 'running'],
        ['spinner', 'running'],
      ]),
    )
  })

  it('renders a plugin’s override of a host template, which includes a template the plugin added', async () => {
    const page = await get('/events')
    expect(page.statusCode).toBe(200)
    expect(page.body).toContain('<h1 id="demo-events">Events</h1>')
    expect(page.body).toContain('<p class="demo-note">Seen by admin</p>')
    // Still inside the host's layout, and the host's own events list is gone.
    expect(page.body).toContain('<title>Events · Corral</title>')
    expect(page.body).not.toContain('<ul id="events"')
  })

  it('sends a signed-in user from / to the plugin’s landing page', async () => {
    const landing = await get('/')
    expect(landing.statusCode).toBe(303)
    expect(landing.headers.location).toBe('/plugins/pages-demo/hello')
    const page = await get('/plugins/pages-demo/hello')
    expect(page.statusCode).toBe(200)
    expect(page.body).toContain('<p>Hello from WebAssembly.</p>')
  })

  it('nests the plugin’s menu items, hides the host item it names, and keeps group items to the group', async () => {
    const nav = (await get('/dashboard')).body
    expect(nav).toMatch(
      /<li><span>Demo<\/span>\s*<ul><li><a href="\/plugins\/pages-demo\/hello">Hello page<\/a>/,
    )
    expect(nav).toContain('href="/admin/plugins"')
    expect(nav).not.toContain('href="/events"')

    const created = await host.server.app.inject({
      method: 'POST',
      url: '/api/v1/users',
      headers: { cookie: admin.cookie, 'x-csrf-token': admin.csrf },
      payload: { username: 'viewer', password: 'viewer-password' },
    })
    expect(created.statusCode).toBe(201)
    const viewer = await signIn(host.server, 'viewer', 'viewer-password')
    const viewerNav = (await get('/dashboard', { cookie: viewer.cookie })).body
    expect(viewerNav).toContain('href="/dashboard"')
    expect(viewerNav).not.toContain('href="/events"')
    expect(viewerNav).not.toContain('Team page')
    const joined = await host.server.app.inject({
      method: 'PUT',
      url: '/api/v1/users/viewer/groups/demo-team',
      headers: { cookie: admin.cookie, 'x-csrf-token': admin.csrf },
    })
    expect(joined.statusCode).toBe(200)
    const memberNav = (await get('/dashboard', { cookie: viewer.cookie })).body
    expect(memberNav).toContain('<a href="/plugins/pages-demo/hello">Team page</a>')
  })

  it('words the pages in the request’s language through the translations registry', async () => {
    const german = (await get('/dashboard', { 'accept-language': 'de-CH,de;q=0.9,en;q=0.5' })).body
    expect(german).toContain('<html lang="de">')
    expect(german).toContain('<h1>Übersicht</h1>')
    expect(german).toContain('<span>Vorführung</span>')
    expect(german).toContain('>Grußseite</a>')
    // Words the plugin does not translate stay English.
    expect(german).toContain('href="/admin/plugins">Plugins</a>')
    const english = (await get('/dashboard', { 'accept-language': 'en-GB' })).body
    expect(english).toContain('<h1>Dashboard</h1>')
    expect(english).toContain('<span>Demo</span>')
  })

  it('lays the widgets out in the registry’s order, with their size and refresh period', async () => {
    const html = (await get('/dashboard')).body
    const big = html.indexOf('data-widget="pages-demo/big"')
    const ticker = html.indexOf('data-widget="pages-demo/ticker"')
    expect(big).toBeGreaterThan(-1)
    expect(ticker).toBeGreaterThan(big)
    expect(html).toContain('<article class="widget size-large" data-widget="pages-demo/big">')
    expect(html).toContain(
      '<article class="widget size-small" data-widget="pages-demo/ticker" data-refresh="1">',
    )
  })

  it('pushes a widget with a refresh period again and again over SSE, and the others not', async () => {
    const stream = streamReader(
      await fetch(`${host.url}/events/stream`, { headers: { cookie: admin.cookie } }),
    )
    try {
      const frame = 'event: widget:pages-demo:ticker\ndata: <p>Hello from WebAssembly.</p>'
      const first = await stream.until(frame)
      const second = await stream.until(frame)
      expect(`${first}${second}`).not.toContain('widget:pages-demo:big')
    } finally {
      await stream.cancel()
    }
  })
})

describe('operations over real plugins', () => {
  it('answers a route call past the request time cap with 504 deadline_exceeded', async () => {
    const res = await host.server.app.inject({ url: '/plugins/spinner/spin' })
    expect(res.statusCode).toBe(504)
    expect(res.json()).toEqual({ code: 'deadline_exceeded', message: expect.any(String) })
  })

  it('counts errors, latency, restarts and host-call refusals per plugin in /metrics', async () => {
    const metrics = async () => (await host.server.app.inject({ url: '/metrics' })).body
    const refusals =
      'corral_host_call_refusals_total{plugin="pages-demo",method="cache.get",code="permission_denied"}'
    const latency = 'corral_plugin_call_milliseconds_sum{plugin="pages-demo"}'
    const before = await metrics()

    // hello-wasm's greet takes `{name}`, not a route request: the route call fails with 400.
    const greeted = await host.server.app.inject({ method: 'POST', url: '/plugins/pages-demo/greet' })
    expect(greeted.statusCode).toBe(400)
    expect(greeted.json()).toMatchObject({ code: 'invalid_argument' })
    // Not granted the cache: the host refuses the plugin's cache call, and the call fails.
    await expect(host.manager.call('pages-demo', 'greet', { name: 'Ada' })).rejects.toThrow(/cache/)
    const trapped = await host.server.app.inject({ url: '/plugins/trapper/trap' })
    expect(trapped.json()).toMatchObject({ code: 'plugin_trap' })
    await vi.waitFor(() => expect(host.manager.get('trapper')?.state).toBe('running'), { timeout: 10_000 })

    const after = await metrics()
    expect(sample(after, refusals)).toBe(sample(before, refusals) + 1)
    expect(sample(after, latency)).toBeGreaterThan(sample(before, latency))
    const errors = (text: string) =>
      text
        .split('\n')
        .filter((l) => l.startsWith('corral_plugin_errors_total{plugin="pages-demo",'))
        .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0)
    expect(errors(after)).toBe(errors(before) + 2)
    expect(sample(after, 'corral_plugin_errors_total{plugin="trapper",code="plugin_trap"}')).toBe(
      sample(before, 'corral_plugin_errors_total{plugin="trapper",code="plugin_trap"}') + 1,
    )
    expect(sample(after, 'corral_plugin_restarts_total{plugin="trapper"}')).toBe(
      sample(before, 'corral_plugin_restarts_total{plugin="trapper"}') + 1,
    )
    // The refusal is in the audit log too.
    const audit = await host.server.app.inject({
      url: '/api/v1/audit?plugin=pages-demo&method=cache.get',
      headers: { cookie: admin.cookie },
    })
    expect(audit.json()).toEqual([
      expect.objectContaining({ plugin: 'pages-demo', code: 'permission_denied' }),
    ])
  })

  it('resets a quarantined plugin from the plugins page and through the API', async () => {
    const quarantine = async () => {
      for (let crash = 0; host.manager.get('trapper')?.state !== 'quarantined'; crash++) {
        expect(crash).toBeLessThan(5)
        await host.server.app.inject({ url: '/plugins/trapper/trap' })
        await vi.waitFor(
          () => expect(['running', 'quarantined']).toContain(host.manager.get('trapper')?.state),
          { timeout: 10_000 },
        )
      }
      expect((await host.server.app.inject({ url: '/plugins/trapper/echo' })).json()).toMatchObject({
        code: 'unavailable',
      })
    }
    const running = () =>
      vi.waitFor(() => expect(host.manager.get('trapper')?.state).toBe('running'), { timeout: 10_000 })

    await quarantine()
    const { html, token } = await pageWithForm(
      host.server,
      admin.cookie,
      '/admin/plugins',
      '/admin/plugins/trapper/reset',
    )
    expect(html).toContain('<button name="reset">Reset quarantine</button>')
    const reset = await submitForm(host.server, admin.cookie, token, '/admin/plugins/trapper/reset')
    expect(reset.statusCode).toBe(303)
    await running()
    expect((await host.server.app.inject({ url: '/plugins/trapper/echo' })).statusCode).toBe(200)
    expect((await get('/admin/plugins')).body).not.toContain('action="/admin/plugins/trapper/reset"')

    await quarantine()
    const api = await host.server.app.inject({
      method: 'POST',
      url: '/api/v1/plugins/trapper/reset',
      headers: { cookie: admin.cookie, 'x-csrf-token': admin.csrf },
    })
    expect(api.statusCode).toBe(200)
    await running()
    expect((await host.server.app.inject({ url: '/plugins/trapper/echo' })).statusCode).toBe(200)
  })
})
