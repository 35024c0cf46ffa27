import type { PluginRegistration } from '@corral/plugin-sdk'
import { namespace, translations } from './translations.js'

/**
 * Everything the plugin adds to the host, self-described: each kind of capability a registration
 * can carry is used at least once. Its name, version and description are its `plugin.yaml`'s.
 * Paths of menu items are the host's; the paths of routes and of the landing page are below the
 * plugin's mount point (`/plugins/stats`).
 */
export const registration: PluginRegistration = {
  routes: [
    {
      method: 'GET',
      path: '/summary',
      handler: 'summary',
      middleware: [],
      description: 'Totals per day and per kind, as JSON (cached until the next rollup).',
    },
    {
      method: 'GET',
      path: '/report/:day',
      handler: 'report',
      middleware: ['auth', 'group:stats-viewers'],
      description: 'One day (YYYY-MM-DD, or today) as an HTML page.',
    },
    {
      method: 'POST',
      path: '/events',
      handler: 'recordEvent',
      middleware: ['auth'],
      description: 'Records an event: {"kind": "login", "day": "2026-11-21"} (day defaults to today).',
    },
    {
      method: 'POST',
      path: '/rollup',
      handler: 'rollUpNow',
      middleware: ['auth', 'admin'],
      description: 'Runs the rollup now instead of at the next minute.',
    },
  ],
  menu_items: [
    {
      id: 'stats',
      label: 'Statistics',
      location: 'admin',
      icon: 'chart-bar',
      order: 40,
      children: [
        {
          id: 'stats.summary',
          label: 'Summary',
          location: 'admin',
          path: '/plugins/stats/summary',
          order: 1,
        },
        {
          id: 'stats.today',
          label: "Today's report",
          location: 'admin',
          path: '/plugins/stats/report/today',
          order: 2,
          group: 'stats-viewers',
        },
      ],
    },
    {
      id: 'stats.agent-report',
      label: 'Statistics',
      location: 'agent',
      path: '/plugins/stats/report/today',
      order: 90,
      group: 'stats-viewers',
    },
  ],
  widgets: [
    { id: 'stats-overview', title: 'Events', handler: 'overviewWidget', size: 'small' },
    {
      id: 'stats-chart',
      title: 'Events per day',
      handler: 'chartWidget',
      size: 'medium',
      refresh_seconds: 60,
    },
  ],
  // No `timeout`: the job runs within the plugin's call timeout (5 s), which is plenty for one statement.
  jobs: [{ id: 'rollup', cron: '* * * * *', handler: 'rollUp', enabled: true }],
  templates: [
    {
      name: 'stats/footer-link',
      content: '<a href="/plugins/stats/summary">statistics</a>',
      override: false,
    },
    {
      // The host's page footer, replaced: Liquid, as the host renders it, including the template above.
      name: 'footer',
      content: '<footer class="layout-footer">Corral · {% render \'stats/footer-link\' %}</footer>',
      override: true,
    },
  ],
  i18n: { namespace, languages: Object.keys(translations), translations },
  error_codes: [
    { code: 'bad_day', message: 'a day is YYYY-MM-DD (or today)', http_status: 400 },
    {
      code: 'bad_event',
      message: 'an event is {"kind": "a-z, 0-9, _ . -", "day": "YYYY-MM-DD"}',
      http_status: 400,
    },
    { code: 'no_data', message: 'no events were rolled up for that day', http_status: 404 },
  ],
  groups: [{ name: 'stats-viewers', description: 'May read the daily reports.' }],
  // The host's own reports entry: the plugin's menu replaces it while the plugin is loaded.
  hidden_menu_items: ['reports'],
  landing_page: '/report/today',
  permissions: [
    { type: 'db', access: ['read', 'write'], scope: ['stats_*'] },
    { type: 'cache', access: ['read', 'write'], scope: ['summary'] },
    { type: 'events', access: [], scope: ['stats.*'] },
  ],
}
