import {
  definePlugin,
  type HostApi,
  type PluginCache,
  PluginError,
  type RouteRequest,
  withArgs,
} from '@corral/plugin-sdk'
import * as z from 'zod'
import {
  countsOfDay,
  createEventTables,
  recordEvent,
  rollUp,
  type Total,
  totalsByDay,
  totalsByKind,
} from './event-store.js'
import { registration } from './registration.js'
import { barChartSvg, escapeHtml, htmlPage, totalsTable } from './render-html.js'
import { htmlResponse, jsonResponse, routeRequest } from './route-http.js'
import { fallbackLanguage, preferredLanguage, translate } from './translations.js'

const summaryKey = 'summary'
/** The cached summary outlives a missed rollup by a little, never by much. */
const summaryTtlSeconds = 120
/** Days the chart widget shows. */
const chartDays = 7
const dayPattern = /^\d{4}-\d{2}-\d{2}$/
const kindPattern = /^[a-z0-9][a-z0-9_.-]{0,63}$/

const today = () => new Date().toISOString().slice(0, 10)

/** `YYYY-MM-DD` naming a real calendar day (`today` is today, in UTC); `stats:bad_day` otherwise. */
function parseDay(text: string): string {
  const day = text === 'today' ? today() : text
  const time = Date.parse(`${day}T00:00:00Z`)
  if (!dayPattern.test(day) || Number.isNaN(time) || new Date(time).toISOString().slice(0, 10) !== day) {
    throw new PluginError('stats:bad_day', `${JSON.stringify(text)} is not a day: use YYYY-MM-DD or today`)
  }
  return day
}

/** The language a request asks for: `?lang=` first, then its `Accept-Language`. */
const requestLanguage = (request: RouteRequest) =>
  preferredLanguage(request.query.lang) ?? preferredLanguage(request.headers['accept-language'])

/** What a widget is rendered with: the language, when the host passes one. */
const widgetArgs = z.object({ language: z.string().optional() })

/** Totals per day and per kind, from the cache while no rollup has changed them. */
async function summaryJson(host: HostApi, cache: PluginCache): Promise<{ json: string; cached: boolean }> {
  const cached = await cache.getString(summaryKey)
  if (cached !== null) return { json: cached, cached: true }
  const [days, kinds] = await Promise.all([totalsByDay(host, 31), totalsByKind(host)])
  const json = JSON.stringify({
    total: kinds.reduce((sum, k) => sum + k.total, 0),
    days: days.map((d) => ({ day: d.label, total: d.total })),
    kinds: kinds.map((k) => ({ kind: k.label, total: k.total })),
  })
  await cache.setString(summaryKey, json, summaryTtlSeconds)
  return { json, cached: false }
}

/** Rolls the raw events up, drops the cached summary, and tells whoever listens. */
async function rollUpAndPublish(
  host: HostApi,
  cache: PluginCache,
  trigger: string,
): Promise<{ rows: number }> {
  const rows = await rollUp(host)
  await cache.delete(summaryKey)
  await host.call('events.publish', { type: 'stats.updated', data: { rows, trigger } })
  await host.call('log', { level: 'info', message: 'rolled up events', fields: { rows, trigger } })
  return { rows }
}

/** The stats plugin, as a host's typed client sees it; `main.ts` serves it. */
const stats = definePlugin({
  register: registration,
  async init(_config, { host }) {
    await createEventTables(host)
  },
  functions: {
    /** GET /summary → `{total, days: [{day, total}], kinds: [{kind, total}]}` as JSON. */
    summary: withArgs(routeRequest, async (_request, { host, cache }) => {
      const { json, cached } = await summaryJson(host, cache)
      return {
        status: 200,
        headers: {
          'content-type': 'application/json; charset=utf-8',
          'x-stats-cache': cached ? 'hit' : 'miss',
        },
        body: json,
      }
    }),

    /** GET /report/:day → one day as an HTML page; `stats:bad_day` (400), `stats:no_data` (404). */
    report: withArgs(routeRequest, async (request, { host }) => {
      const day = parseDay(request.params.day ?? '')
      const counts = await countsOfDay(host, day)
      if (counts.length === 0) throw new PluginError('stats:no_data', `no events were rolled up for ${day}`)
      const language = requestLanguage(request)
      const [title, kindHeading, totalHeading] = await Promise.all([
        translate(host, 'report.title', [day], language),
        translate(host, 'report.kind', [], language),
        translate(host, 'report.total', [], language),
      ])
      const totals: Total[] = counts.map((c) => ({ label: c.kind, total: c.total }))
      const body = totalsTable(totals, kindHeading, totalHeading) + barChartSvg(totals, title)
      return htmlResponse(200, htmlPage(title, language ?? fallbackLanguage, body))
    }),

    /** POST /events `{"kind": "login", "day"?: "YYYY-MM-DD"}` → 201 `{day, kind}`; `stats:bad_event` (400). */
    recordEvent: withArgs(routeRequest, async (request, { host }) => {
      let event: { kind?: unknown; day?: unknown }
      try {
        event = JSON.parse(request.body) ?? {}
      } catch {
        throw new PluginError('stats:bad_event', 'the body is not JSON: send {"kind": "..."}')
      }
      if (typeof event.kind !== 'string' || !kindPattern.test(event.kind)) {
        throw new PluginError('stats:bad_event', 'kind must be 1-64 characters of a-z, 0-9, _, . and -')
      }
      if (event.day !== undefined && typeof event.day !== 'string') {
        throw new PluginError('stats:bad_day', 'day must be a string: YYYY-MM-DD')
      }
      const day = event.day === undefined ? today() : parseDay(event.day)
      await recordEvent(host, day, event.kind, new Date().toISOString())
      return jsonResponse(201, { day, kind: event.kind })
    }),

    /** POST /rollup (administrators) → `{rows}`: the rollup, now. */
    rollUpNow: withArgs(routeRequest, async (request, { host, cache }) =>
      jsonResponse(200, await rollUpAndPublish(host, cache, `user:${request.user?.id ?? 'unknown'}`)),
    ),

    /** The `rollup` job, every minute: `{job, scheduled_at}` → `{rows}`. */
    rollUp: withArgs(z.object({ job: z.string().default('rollup') }), ({ job }, { host, cache }) =>
      rollUpAndPublish(host, cache, `job:${job}`),
    ),

    /** The small widget: today's count and the all-time total, as HTML. */
    overviewWidget: withArgs(widgetArgs, async (args, { host }) => {
      const language = preferredLanguage(args.language)
      const [counts, kinds] = await Promise.all([countsOfDay(host, today()), totalsByKind(host)])
      const todayTotal = counts.reduce((sum, c) => sum + c.total, 0)
      const total = kinds.reduce((sum, k) => sum + k.total, 0)
      const [todayLabel, totalLabel] = await Promise.all([
        translate(host, 'widget.today', [], language),
        translate(host, 'widget.total', [], language),
      ])
      return (
        `<dl class="stats-overview"><dt>${escapeHtml(todayLabel)}</dt><dd>${todayTotal}</dd>` +
        `<dt>${escapeHtml(totalLabel)}</dt><dd>${total}</dd></dl>`
      )
    }),

    /** The chart widget (re-rendered every minute): the latest days' totals as an inline SVG bar chart. */
    chartWidget: withArgs(widgetArgs, async (args, { host }) => {
      const language = preferredLanguage(args.language)
      const days = await totalsByDay(host, chartDays)
      if (days.length === 0)
        return `<p class="stats-empty">${escapeHtml(await translate(host, 'widget.empty', [], language))}</p>`
      return barChartSvg(days, await translate(host, 'widget.chart', [], language))
    }),
  },
})

export default stats
