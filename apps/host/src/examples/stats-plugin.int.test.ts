import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createGrpcRunner } from '@corral/grpc-runner'
import {
  type Backends,
  createBackends,
  createPolicyGrantLookup,
  createSandboxedHostApi,
  createSqlPolicyStore,
  type HostEvent,
  type TranslationRequest,
} from '@corral/manager'
import { loadManifest, loadPolicies, parseRegistration } from '@corral/manifest'
import type { Manifest, Plugin, Registration } from '@corral/types'
import { isPluginError } from '@corral/types'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'

/**
 * The stats example (examples/plugins/stats, built from source by the build) as the host runs it:
 * its own process under the real gRPC runner, its host calls through the real sandboxed host API
 * over SQLite, under the policy apps/host/policies.yaml gives it.
 */
const appDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const statsDir = path.resolve(appDir, '../../examples/plugins/stats')
const quiet = { log() {} }
const today = new Date().toISOString().slice(0, 10)

/** A route request as the host sends it; `user` is an administrator unless given. */
function request(method: string, routePath: string, fields: Record<string, unknown> = {}) {
  return {
    method,
    path: routePath,
    params: {},
    query: {},
    headers: {},
    body: '',
    user: { id: 'u1', name: 'Ada', groups: ['stats-viewers'], admin: true },
    ...fields,
  }
}

/** What GET /summary answers, with its cache header. */
interface Summary {
  cache: string | undefined
  total: number
  days: { day: string; total: number }[]
  kinds: { kind: string; total: number }[]
}

interface RouteAnswer {
  status: number
  headers: Record<string, string>
  body: string
}

/** The error a call failed with, or a failure of the test when it did not fail. */
async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => expect.fail(`expected a failure, got ${JSON.stringify(value)}`),
    (error: unknown) => error,
  )
}

describe('examples/plugins/stats under the gRPC runner and the sandboxed host API (SQLite)', {
  timeout: 30_000,
}, () => {
  let backends: Backends
  let manifest: Manifest
  let plugin: Plugin
  let registration: Registration
  const runner = createGrpcRunner({ hostVersion: '0.1.0', logger: quiet })
  const events: HostEvent[] = []
  /** What the host's translator knows, by `<language>|<key>`; empty means the host has no translations. */
  const hostTranslations = new Map<string, (args: readonly unknown[]) => string>()
  const translationRequests: TranslationRequest[] = []

  const call = (fn: string, args: unknown) => plugin.call(fn, args)
  const route = async (fn: string, args: unknown) => (await call(fn, args)) as RouteAnswer
  const summary = async () => {
    const answer = await route('summary', request('GET', '/summary', { user: null }))
    return { cache: answer.headers['x-stats-cache'], ...JSON.parse(answer.body) } as Summary
  }
  const post = (body: string) => route('recordEvent', request('POST', '/events', { body }))
  const report = (day: string, fields: Record<string, unknown> = {}) =>
    route('report', request('GET', `/report/${day}`, { params: { day }, ...fields }))

  beforeAll(async () => {
    backends = await createBackends({ sqlitePath: ':memory:' })
    backends.events.subscribe((event) => events.push(event))
    const policies = createSqlPolicyStore(backends.database)
    for (const policy of await loadPolicies(path.join(appDir, 'policies.yaml'))) await policies.put(policy)
    ;({ manifest } = await loadManifest(statsDir))
    const grants = createPolicyGrantLookup({ policies, requestOf: () => manifest.resources })
    const hostApi = createSandboxedHostApi({
      backends,
      grants,
      logger: quiet,
      translate: (req) => {
        translationRequests.push(req)
        return hostTranslations.get(`${req.language}|${req.key}`)?.(req.args)
      },
    })
    plugin = await runner.load({
      manifest,
      dir: statsDir,
      grant: await grants('stats'),
      hostApi: hostApi.forPlugin('stats'),
    })
    registration = await plugin.register()
    await plugin.init({})
  }, 60_000)

  afterAll(async () => {
    await runner.close()
    await backends?.close()
  })

  beforeEach(() => {
    events.length = 0
    translationRequests.length = 0
    hostTranslations.clear()
  })

  it('registers every capability, and the registration is valid for its manifest', () => {
    expect(parseRegistration(registration, manifest)).toEqual(registration)
    // The plugin does not repeat its identity: the host takes it from plugin.yaml.
    expect(registration).toMatchObject({ name: 'stats', version: '0.1.0', description: manifest.description })
    expect(registration.routes.map((r) => [r.method, r.path, r.handler, r.middleware])).toEqual([
      ['GET', '/summary', 'summary', []],
      ['GET', '/report/:day', 'report', ['auth', 'group:stats-viewers']],
      ['POST', '/events', 'recordEvent', ['auth']],
      ['POST', '/rollup', 'rollUpNow', ['auth', 'admin']],
    ])
    const [admin] = registration.menu_items
    expect(admin).toMatchObject({ id: 'stats', location: 'admin', order: 40 })
    expect(admin?.children?.map((c) => [c.id, c.order, c.path])).toEqual([
      ['stats.summary', 1, '/plugins/stats/summary'],
      ['stats.today', 2, '/plugins/stats/report/today'],
    ])
    expect(registration.hidden_menu_items).toEqual(['reports'])
    expect(registration.widgets).toEqual([
      { id: 'stats-overview', title: 'Events', handler: 'overviewWidget', size: 'small' },
      {
        id: 'stats-chart',
        title: 'Events per day',
        handler: 'chartWidget',
        size: 'medium',
        refresh_seconds: 60,
      },
    ])
    expect(registration.jobs).toEqual([{ id: 'rollup', cron: '* * * * *', handler: 'rollUp', enabled: true }])
    expect(registration.templates.map((t) => [t.name, t.override])).toEqual([
      ['stats/footer-link', false],
      ['footer', true],
    ])
    expect(registration.i18n?.namespace).toBe('stats')
    expect(registration.i18n?.languages).toEqual(['en', 'de'])
    expect(registration.error_codes.map((e) => [e.code, e.http_status])).toEqual([
      ['bad_day', 400],
      ['bad_event', 400],
      ['no_data', 404],
    ])
    expect(registration.groups).toEqual([
      { name: 'stats-viewers', description: 'May read the daily reports.' },
    ])
    expect(registration.landing_page).toBe('/report/today')
    // It claims exactly what its manifest requests, which policies.yaml approves as a whole.
    expect(registration.permissions).toEqual(manifest.resources.permissions)
  })

  it('shows an empty chart before any rollup, in English where its German lacks the text', async () => {
    expect(await call('chartWidget', { language: 'de' })).toBe('<p class="stats-empty">No events yet.</p>')
  })

  it('records events (POST /events) and refuses bad ones with its own codes', async () => {
    expect(await post('{"kind": "login", "day": "2026-11-20"}')).toEqual({
      status: 201,
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body: '{"day":"2026-11-20","kind":"login"}',
    })
    expect(JSON.parse((await post('{"kind": "signup"}')).body)).toEqual({ day: today, kind: 'signup' })

    for (const [body, code] of [
      ['not json', 'stats:bad_event'],
      ['{"kind": "Not A Kind"}', 'stats:bad_event'],
      ['[]', 'stats:bad_event'],
      ['{"kind": "login", "day": "2026-02-30"}', 'stats:bad_day'],
      ['{"kind": "login", "day": 20261120}', 'stats:bad_day'],
    ]) {
      const error = await failure(post(body as string))
      expect(isPluginError(error), body).toBe(true)
      expect(error, body).toMatchObject({ name: 'PluginError', code })
    }
    const error = await failure(call('recordEvent', { kind: 'login' }))
    expect(error).toMatchObject({ name: 'PluginError', code: 'invalid_argument' })
  })

  it('rolls events up in its job, into its own table, publishing stats.updated and dropping the cached summary', async () => {
    await post('{"kind": "login", "day": "2026-11-21"}')
    await post('{"kind": "login", "day": "2026-11-21"}')
    await post('{"kind": "logout", "day": "2026-11-21"}')
    const before = await summary()
    expect(before.cache).toBe('miss')
    expect(await summary()).toEqual({ ...before, cache: 'hit' })

    const job = (await call('rollUp', { job: 'rollup', scheduled_at: new Date().toISOString() })) as {
      rows: number
    }
    expect(job.rows).toBeGreaterThanOrEqual(3)
    expect(events).toEqual([
      expect.objectContaining({
        type: 'stats.updated',
        plugin: 'stats',
        data: { rows: job.rows, trigger: 'job:rollup' },
      }),
    ])
    const after = await summary()
    expect(after.cache).toBe('miss')
    expect(after.days).toEqual(expect.arrayContaining([{ day: '2026-11-21', total: 3 }]))
    expect(after.kinds).toEqual(expect.arrayContaining([{ kind: 'logout', total: 1 }]))

    // A second rollup recounts: the same totals, never doubled.
    await call('rollUp', { job: 'rollup' })
    expect((await summary()).days).toEqual(after.days)
    expect((await summary()).cache).toBe('hit')
  })

  it('runs the rollup for an administrator (POST /rollup), attributed to the user', async () => {
    await post('{"kind": "export", "day": "2026-11-22"}')
    const answer = await route('rollUpNow', request('POST', '/rollup'))
    expect(answer.status).toBe(200)
    expect(events.map((e) => e.data)).toEqual([{ rows: JSON.parse(answer.body).rows, trigger: 'user:u1' }])
  })

  it('reports a day as HTML (GET /report/:day), translated through the host with its own fallback', async () => {
    await post('{"kind": "login", "day": "2026-11-23"}')
    await post('{"kind": "login", "day": "2026-11-23"}')
    await call('rollUp', { job: 'rollup' })

    const english = await report('2026-11-23')
    expect(english.status).toBe(200)
    expect(english.headers['content-type']).toBe('text/html; charset=utf-8')
    expect(english.body).toContain('<title>Events on 2026-11-23</title>')
    expect(english.body).toContain('<tr><td>login</td><td>2</td></tr>')
    expect(english.body).toMatch(/<svg [^>]*role="img"[^>]*>.*<rect [^>]*><title>login: 2<\/title><\/rect>/)
    expect(translationRequests).toContainEqual({
      plugin: 'stats',
      key: 'stats.report.title',
      args: ['2026-11-23'],
    })

    // The host has no German: the plugin's own table answers, for de-CH too (its base language).
    const german = await report('2026-11-23', { headers: { 'accept-language': 'de-CH, de;q=0.9' } })
    expect(german.body).toContain('<html lang="de-CH">')
    expect(german.body).toContain('<title>Ereignisse am 2026-11-23</title>')
    expect(german.body).toContain('<th>Art</th><th>Anzahl</th>')

    // The host's translation wins when it has one.
    hostTranslations.set('de|stats.report.title', (args) => `Bericht vom ${args[0]}`)
    const hosted = await report('2026-11-23', { query: { lang: 'de' } })
    expect(hosted.body).toContain('<title>Bericht vom 2026-11-23</title>')
  })

  it('answers a bad day with stats:bad_day and a day without data with stats:no_data', async () => {
    for (const day of ['2026-13-01', 'yesterday', '2026-11-2', '']) {
      expect(await failure(report(day)), day).toMatchObject({ name: 'PluginError', code: 'stats:bad_day' })
    }
    const error = await failure(report('1999-01-01'))
    expect(error).toMatchObject({ name: 'PluginError', code: 'stats:no_data' })
    const codes = new Map(registration.error_codes.map((e) => [`stats:${e.code}`, e.http_status]))
    expect(isPluginError(error) && codes.get(error.code)).toBe(404)
  })

  it('renders its widgets as HTML: counts, and an inline SVG bar chart', async () => {
    await post('{"kind": "widget-test"}')
    await post('{"kind": "widget-test"}')
    // A later day than today must not hide today's count.
    await post('{"kind": "widget-test", "day": "2099-01-01"}')
    await call('rollUp', { job: 'rollup' })
    const { days, kinds } = await summary()
    const total = kinds.reduce((sum, k) => sum + k.total, 0)
    const todays = days.find((d) => d.day === today)?.total ?? 0
    expect(todays).toBeGreaterThanOrEqual(2)

    const overview = (await call('overviewWidget', {})) as string
    expect(overview).toContain(`<dt>Today</dt><dd>${todays}</dd>`)
    expect(overview).toContain(`<dt>All time</dt><dd>${total}</dd>`)
    expect(await call('overviewWidget', { language: 'de' })).toContain(`<dt>Heute</dt><dd>${todays}</dd>`)

    const chart = (await call('chartWidget', {})) as string
    expect(chart).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg" [^>]*aria-label="Events per day">/)
    expect(chart).toContain(`<title>${today}: ${todays}</title>`)
    expect(chart.match(/<rect /g)?.length).toBeLessThanOrEqual(7)
    expect(chart).not.toMatch(/<script|href=|src=/)
  })
})
