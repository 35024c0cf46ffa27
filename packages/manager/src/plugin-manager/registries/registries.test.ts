import type { MenuItem, Registration } from '@corral/types'
import { describe, expect, it, vi } from 'vitest'
import type { MountedMenuItem, Registries } from '../manager-api.js'
import { createRegistries } from './registries.js'

function registration(name: string, capabilities: Partial<Registration> = {}): Registration {
  return {
    name,
    version: '1.0.0',
    routes: [],
    menu_items: [],
    widgets: [],
    jobs: [],
    templates: [],
    error_codes: [],
    groups: [],
    hidden_menu_items: [],
    permissions: [],
    ...capabilities,
  }
}

function route(method: 'GET' | 'POST', path: string, handler = 'handle') {
  return { method, path, handler, middleware: ['auth'] }
}

function item(id: string, fields: Partial<MenuItem> = {}): MenuItem {
  return { id, label: id, location: 'admin', ...fields }
}

/** A menu as `id(plugin)[children]`, to compare trees at a glance. */
function outline(items: readonly MountedMenuItem[]): string[] {
  return items.map((i) => {
    const children = outline(i.children)
    return `${i.id}(${i.plugin ?? 'host'})${children.length > 0 ? `[${children.join(' ')}]` : ''}`
  })
}

/** Everything a reader can see, to check that a refused change left it all as it was. */
function everything(registries: Registries) {
  return {
    routes: registries.routes(),
    menu: registries.menu('admin'),
    widgets: registries.widgets(),
    templates: registries.templates(),
    errorCodes: registries.errorCodes(),
    groups: registries.groups(),
    landing: registries.landingPage(),
    title: registries.translate('stats', 'title', 'en'),
    match: registries.matchRoute('GET', '/plugins/stats/reports/1'),
  }
}

const hostMenu: MountedMenuItem[] = [
  { id: 'home', label: 'Home', location: 'admin', path: '/', order: 1, children: [] },
  {
    id: 'reports',
    label: 'Reports',
    location: 'admin',
    order: 2,
    children: [{ id: 'reports.legacy', label: 'Legacy', location: 'admin', path: '/legacy', children: [] }],
  },
  { id: 'tickets', label: 'Tickets', location: 'agent', path: '/tickets', children: [] },
]

describe('createRegistries: routes', () => {
  it('mounts routes under /plugins/<plugin> and matches :params', () => {
    const registries = createRegistries()
    registries.put(
      'stats',
      registration('stats', { routes: [route('GET', '/reports/:day'), route('POST', '/reports')] }),
    )
    expect(registries.routes().map((r) => `${r.method} ${r.fullPath} ${r.plugin}`)).toEqual([
      'GET /plugins/stats/reports/:day stats',
      'POST /plugins/stats/reports stats',
    ])
    const match = registries.matchRoute('GET', '/plugins/stats/reports/2026-11-21')
    expect(match?.route).toMatchObject({ plugin: 'stats', handler: 'handle', middleware: ['auth'] })
    expect(match?.params).toEqual({ day: '2026-11-21' })
    expect(registries.matchRoute('GET', '/plugins/stats/reports/a%20b?x=1')?.params).toEqual({ day: 'a b' })
    expect(registries.matchRoute('POST', '/plugins/stats/reports/2026-11-21')).toBeUndefined()
    expect(registries.matchRoute('GET', '/plugins/other/reports/1')).toBeUndefined()
    expect(registries.matchRoute('GET', '/plugins/stats/reports/%zz')).toBeUndefined()
  })

  it('refuses a route another plugin serves, naming both plugins and the route, and changes nothing', () => {
    // A plugin's routes live under its own /plugins/<name>, and names hold no '/': only a path without
    // its leading '/' (which the registration schema refuses) reaches another plugin's. The check
    // does not rely on that schema.
    const registries = createRegistries()
    registries.put('stats', registration('stats', { routes: [route('GET', '-x/:id')] }))
    const before = everything(registries)
    expect(() =>
      registries.put(
        'stats-x',
        registration('stats-x', { routes: [route('GET', '/:name'), route('GET', '/ok')] }),
      ),
    ).toThrow(
      expect.objectContaining({
        code: 'already_exists',
        message: expect.stringContaining(
          "plugin stats-x's route GET /plugins/stats-x/:name is already served by plugin stats's route GET /plugins/stats-x/:id",
        ),
      }),
    )
    expect(everything(registries)).toEqual(before)
    // stats-x's other route was not mounted either: stats's :id still answers.
    expect(registries.matchRoute('GET', '/plugins/stats-x/ok')?.route.plugin).toBe('stats')
  })

  it('refuses a plugin serving one route twice', () => {
    const registries = createRegistries()
    expect(() =>
      registries.put(
        'stats',
        registration('stats', { routes: [route('GET', '/a/:x'), route('GET', '/a/:y')] }),
      ),
    ).toThrow(
      expect.objectContaining({
        code: 'already_exists',
        message: expect.stringContaining('/plugins/stats/a/:y'),
      }),
    )
    expect(registries.routes()).toEqual([])
  })

  it('replaces a plugin’s routes when it is put again, and drops them when it is removed', () => {
    const registries = createRegistries()
    registries.put('stats', registration('stats', { routes: [route('GET', '/old')] }))
    registries.put('stats', registration('stats', { routes: [route('GET', '/new')] }))
    expect(registries.routes().map((r) => r.fullPath)).toEqual(['/plugins/stats/new'])
    expect(registries.matchRoute('GET', '/plugins/stats/old')).toBeUndefined()
    registries.remove('stats')
    expect(registries.routes()).toEqual([])
    expect(registries.matchRoute('GET', '/plugins/stats/new')).toBeUndefined()
  })

  it('hands out snapshots a reader cannot change, and that a later put does not change', () => {
    const registries = createRegistries()
    const input = registration('stats', { routes: [route('GET', '/a')] })
    registries.put('stats', input)
    const seen = registries.routes()
    input.routes.push(route('GET', '/b'))
    registries.put('other', registration('other', { routes: [route('GET', '/c')] }))
    expect(seen.map((r) => r.fullPath)).toEqual(['/plugins/stats/a'])
    expect(() => (seen as unknown[]).push(1)).toThrow(TypeError)
    expect(() => {
      ;(seen[0] as { handler: string }).handler = 'evil'
    }).toThrow(TypeError)
  })
})

describe('createRegistries: menus', () => {
  it('merges plugins’ items into the host’s tree by id and order, per location', () => {
    const registries = createRegistries({ hostMenu })
    registries.put(
      'stats',
      registration('stats', {
        menu_items: [
          item('reports', { label: 'Ignored', children: [item('reports.daily', { order: 1 })] }),
          item('stats', { order: 0 }),
          item('stats.agent', { location: 'agent' }),
        ],
      }),
    )
    registries.put(
      'audit',
      registration('audit', { menu_items: [item('reports', { children: [item('reports.audit')] })] }),
    )
    expect(outline(registries.menu('admin'))).toEqual([
      'stats(stats)',
      'home(host)',
      'reports(host)[reports.daily(stats) reports.legacy(host) reports.audit(audit)]',
    ])
    expect(registries.menu('admin')[2]?.label).toBe('Reports')
    expect(outline(registries.menu('agent'))).toEqual(['tickets(host)', 'stats.agent(stats)'])
    expect(registries.menu('customer')).toEqual([])
  })

  it('hides the host’s items a loaded plugin names, and shows them again once it is removed', () => {
    const registries = createRegistries({ hostMenu })
    registries.put('stats', registration('stats', { hidden_menu_items: ['reports.legacy', 'home'] }))
    expect(outline(registries.menu('admin'))).toEqual(['reports(host)'])
    registries.remove('stats')
    expect(outline(registries.menu('admin'))).toEqual(['home(host)', 'reports(host)[reports.legacy(host)]'])
  })

  it('keeps the group of an item for the host to filter on', () => {
    const registries = createRegistries()
    registries.put(
      'stats',
      registration('stats', { menu_items: [item('secret', { group: 'auditors', path: '/s' })] }),
    )
    expect(registries.menu('admin')[0]).toMatchObject({
      id: 'secret',
      group: 'auditors',
      path: '/s',
      plugin: 'stats',
    })
  })
})

describe('createRegistries: widgets, groups, landing page', () => {
  it('lists widgets by plugin and refuses one plugin declaring an id twice', () => {
    const registries = createRegistries()
    const widget = { id: 'w', title: 'W', handler: 'render', size: 'small' as const }
    registries.put('a', registration('a', { widgets: [widget] }))
    registries.put('b', registration('b', { widgets: [widget] }))
    expect(registries.widgets().map((w) => `${w.plugin}/${w.id}`)).toEqual(['a/w', 'b/w'])
    expect(() => registries.put('c', registration('c', { widgets: [widget, widget] }))).toThrow(
      expect.objectContaining({ code: 'already_exists' }),
    )
    expect(registries.widgets()).toHaveLength(2)
  })

  it('lists each group once, with the first plugin to declare it', () => {
    const registries = createRegistries()
    registries.put('a', registration('a', { groups: [{ name: 'auditors' }] }))
    registries.put('b', registration('b', { groups: [{ name: 'auditors' }, { name: 'reporters' }] }))
    expect(registries.groups()).toEqual([
      { name: 'auditors', plugin: 'a' },
      { name: 'reporters', plugin: 'b' },
    ])
    registries.remove('a')
    expect(registries.groups()).toEqual([
      { name: 'auditors', plugin: 'b' },
      { name: 'reporters', plugin: 'b' },
    ])
  })

  it('takes the landing page of the first plugin in load order that declares one; a re-put keeps its place', () => {
    const registries = createRegistries()
    expect(registries.landingPage()).toBeUndefined()
    registries.put('first', registration('first'))
    registries.put('second', registration('second', { landing_page: '/home' }))
    registries.put('third', registration('third', { landing_page: '/start' }))
    expect(registries.landingPage()).toEqual({ plugin: 'second', path: '/plugins/second/home' })
    registries.put('first', registration('first', { landing_page: '/dash' }))
    expect(registries.landingPage()).toEqual({ plugin: 'first', path: '/plugins/first/dash' })
    registries.remove('first')
    registries.remove('second')
    expect(registries.landingPage()).toEqual({ plugin: 'third', path: '/plugins/third/start' })
  })
})

describe('createRegistries: templates', () => {
  const hostTemplates = [{ name: 'layout', content: 'host layout', override: false }]

  it('serves a plugin’s override over the host’s template, and additions beside them', () => {
    const registries = createRegistries({ hostTemplates })
    expect(registries.template('layout')).toEqual({ name: 'layout', content: 'host layout', override: false })
    registries.put(
      'theme',
      registration('theme', {
        templates: [
          { name: 'layout', content: 'theme layout', override: true },
          { name: 'theme/card', content: 'card', override: false },
        ],
      }),
    )
    expect(registries.template('layout')).toMatchObject({ plugin: 'theme', content: 'theme layout' })
    expect(registries.templates().map((t) => `${t.name}:${t.plugin ?? 'host'}`)).toEqual([
      'layout:theme',
      'theme/card:theme',
    ])
    registries.remove('theme')
    expect(registries.template('layout')?.content).toBe('host layout')
    expect(registries.template('theme/card')).toBeUndefined()
  })

  it('refuses a second plugin overriding the same host template, naming both, and changes nothing', () => {
    const registries = createRegistries({ hostTemplates })
    registries.put(
      'theme',
      registration('theme', { templates: [{ name: 'layout', content: 't', override: true }] }),
    )
    const before = everything(registries)
    expect(() =>
      registries.put(
        'other',
        registration('other', { templates: [{ name: 'layout', content: 'o', override: true }] }),
      ),
    ).toThrow(
      expect.objectContaining({
        code: 'already_exists',
        message: expect.stringContaining(
          "plugin other's override of layout conflicts with plugin theme's override of layout",
        ),
      }),
    )
    expect(everything(registries)).toEqual(before)
    expect(registries.template('layout')?.plugin).toBe('theme')
  })

  it('refuses an addition with a host template’s name, and two plugins adding one name', () => {
    const registries = createRegistries({ hostTemplates })
    expect(() =>
      registries.put(
        'a',
        registration('a', { templates: [{ name: 'layout', content: 'x', override: false }] }),
      ),
    ).toThrow(
      expect.objectContaining({
        code: 'already_exists',
        message: expect.stringContaining('declare it as an override'),
      }),
    )
    registries.put('a', registration('a', { templates: [{ name: 'card', content: 'a', override: false }] }))
    expect(() =>
      registries.put(
        'b',
        registration('b', { templates: [{ name: 'card', content: 'b', override: false }] }),
      ),
    ).toThrow(
      expect.objectContaining({
        message: expect.stringContaining("plugin b's template card conflicts with plugin a's"),
      }),
    )
  })
})

describe('createRegistries: translations', () => {
  const i18n = {
    namespace: 'stats',
    languages: ['en', 'pt', 'pt-BR'],
    translations: {
      en: { title: 'Statistics', greet: 'Hello {0}, you have {1} reports', only_en: 'English only' },
      pt: { title: 'Estatísticas' },
      'pt-BR': { greet: 'Olá {0}' },
    },
  }

  it('translates in the plugin’s namespace, falling back to the base and then the default language', () => {
    const registries = createRegistries({ defaultLanguage: 'en' })
    registries.put('stats', registration('stats', { i18n }))
    expect(registries.translate('stats', 'title', 'pt-BR')).toBe('Estatísticas')
    expect(registries.translate('stats', 'greet', 'pt-BR', ['Ana'])).toBe('Olá Ana')
    expect(registries.translate('stats', 'only_en', 'pt-BR')).toBe('English only')
    expect(registries.translate('stats', 'greet', 'de', ['Ana', 3])).toBe('Hello Ana, you have 3 reports')
    expect(registries.translate('stats', 'greet', 'en', ['Ana'])).toBe('Hello Ana, you have {1} reports')
    expect(registries.translate('other', 'stats:title', 'en')).toBe('Statistics')
    expect(registries.translate('stats', 'missing', 'en')).toBeUndefined()
    expect(registries.translate('stats', 'constructor', 'en')).toBeUndefined()
    expect(registries.translate('nobody', 'title', 'en')).toBeUndefined()
  })

  it('refuses a second plugin with a namespace that is taken, and changes nothing', () => {
    const registries = createRegistries()
    registries.put('stats', registration('stats', { i18n }))
    const before = everything(registries)
    expect(() => registries.put('copycat', registration('copycat', { i18n }))).toThrow(
      expect.objectContaining({ code: 'already_exists', message: expect.stringContaining('plugin stats') }),
    )
    expect(everything(registries)).toEqual(before)
  })
})

describe('createRegistries: error codes', () => {
  it('qualifies declared codes and reports an undeclared one with HTTP 500', () => {
    const onUndeclaredErrorCode = vi.fn()
    const registries = createRegistries({ onUndeclaredErrorCode })
    registries.put(
      'stats',
      registration('stats', {
        error_codes: [{ code: 'no_data', message: 'No data for that day', http_status: 404 }],
      }),
    )
    const declared = {
      plugin: 'stats',
      code: 'no_data',
      qualified: 'stats:no_data',
      message: 'No data for that day',
      http_status: 404,
    }
    expect(registries.errorCode('stats:no_data')).toEqual(declared)
    expect(registries.errorCodes()).toEqual([declared])
    expect(registries.errorFor('stats', 'no_data')).toEqual(declared)
    expect(registries.errorFor('stats', 'stats:no_data')).toEqual(declared)
    expect(onUndeclaredErrorCode).not.toHaveBeenCalled()
    expect(registries.errorFor('stats', 'boom')).toMatchObject({ qualified: 'stats:boom', http_status: 500 })
    expect(onUndeclaredErrorCode).toHaveBeenCalledWith('stats', 'boom')
    expect(registries.errorCode('stats:boom')).toBeUndefined()
  })

  it('refuses a plugin declaring one code twice, and changes nothing', () => {
    const registries = createRegistries()
    registries.put(
      'stats',
      registration('stats', {
        routes: [route('GET', '/reports/:day')],
        i18n: { namespace: 'stats', languages: ['en'], translations: { en: { title: 'T' } } },
      }),
    )
    const before = everything(registries)
    const code = { code: 'x', message: 'X', http_status: 400 }
    expect(() => registries.put('stats', registration('stats', { error_codes: [code, code] }))).toThrow(
      expect.objectContaining({
        code: 'already_exists',
        message: expect.stringContaining('error code x twice'),
      }),
    )
    expect(everything(registries)).toEqual(before)
    expect(before.match?.params).toEqual({ day: '1' })
  })
})
