/**
 * The registries: what running plugins add to the host (routes, menus, widgets, templates,
 * translations, error codes, groups, the landing page). Every change builds a whole new immutable
 * snapshot from the registrations and then swaps one reference, so a reader sees the registries
 * before or after a plugin's change, never half of it; a change that conflicts throws and leaves
 * the snapshot in force as it was.
 */
import type { GroupSpec, I18nSpec, MenuItem, MenuLocation, Registration, TemplateSpec } from '@corral/types'
import { PluginError } from '@corral/types'
import FindMyWay from 'find-my-way'
import type {
  MountedErrorCode,
  MountedMenuItem,
  MountedRoute,
  MountedTemplate,
  MountedWidget,
  Registries,
} from '../manager-api.js'

/** Options of {@link createRegistries}. */
export interface RegistriesOptions {
  /** The host's own menu items, which plugins' items join and `hidden_menu_items` hide. */
  hostMenu?: MountedMenuItem[]
  /** The host's own templates, which plugins may override (`override: true`). */
  hostTemplates?: TemplateSpec[]
  /** The language a translation falls back to. Default `en`. */
  defaultLanguage?: string
  /** Told when a plugin fails with an error code it did not declare (the manager logs it). */
  onUndeclaredErrorCode?: (plugin: string, code: string) => void
}

/** The registries as the manager changes them: one plugin's entries at a time, atomically. */
export interface MutableRegistries extends Registries {
  /**
   * Replaces `plugin`'s entries with those of `registration`, atomically. Throws `already_exists`
   * (naming both plugins) when a route, template, i18n namespace, error code or widget id is taken,
   * and then changes nothing. A plugin keeps its place in load order when it is put again.
   */
  put(plugin: string, registration: Registration): void
  /** Drops `plugin`'s entries (nothing if it has none). */
  remove(plugin: string): void
}

const menuLocations: readonly MenuLocation[] = ['admin', 'agent', 'customer']

/** One immutable state of every registry. */
interface Snapshot {
  /** Registrations in load order (a `Map` keeps insertion order; `set` on a known key keeps its place). */
  registrations: ReadonlyMap<string, Registration>
  routes: readonly MountedRoute[]
  router: FindMyWay.Instance<FindMyWay.HTTPVersion.V1>
  menus: ReadonlyMap<MenuLocation, readonly MountedMenuItem[]>
  widgets: readonly MountedWidget[]
  templates: ReadonlyMap<string, MountedTemplate>
  translations: ReadonlyMap<string, I18nSpec>
  errorCodes: ReadonlyMap<string, MountedErrorCode>
  groups: readonly (GroupSpec & { plugin: string })[]
  landingPage: { plugin: string; path: string } | undefined
}

/**
 * Creates empty registries over the host's own menu items and templates.
 *
 * @example
 * const registries = createRegistries({ hostMenu, defaultLanguage: 'en' })
 * registries.put('stats', registration)
 * registries.matchRoute('GET', '/plugins/stats/reports/2026-11-21')   // { route, params: { day: '2026-11-21' } }
 */
export function createRegistries(options: RegistriesOptions = {}): MutableRegistries {
  const hostMenu = deepFreeze(structuredClone(options.hostMenu ?? []))
  const hostTemplates: ReadonlyMap<string, MountedTemplate> = new Map(
    (options.hostTemplates ?? []).map((t) => [t.name, deepFreeze({ ...t })]),
  )
  const defaultLanguage = options.defaultLanguage ?? 'en'
  let current = buildSnapshot(new Map(), hostMenu, hostTemplates)

  return {
    put(plugin, registration) {
      const registrations = new Map(current.registrations)
      registrations.set(plugin, deepFreeze(structuredClone(registration)))
      current = buildSnapshot(registrations, hostMenu, hostTemplates)
    },
    remove(plugin) {
      if (!current.registrations.has(plugin)) return
      const registrations = new Map(current.registrations)
      registrations.delete(plugin)
      current = buildSnapshot(registrations, hostMenu, hostTemplates)
    },
    errorFor(plugin, code) {
      const bare = code.startsWith(`${plugin}:`) ? code.slice(plugin.length + 1) : code
      const qualified = `${plugin}:${bare}`
      const declared = current.errorCodes.get(qualified)
      if (declared !== undefined) return declared
      options.onUndeclaredErrorCode?.(plugin, bare)
      return {
        plugin,
        code: bare,
        qualified,
        http_status: 500,
        message: `plugin ${plugin} failed with error code ${bare}, which it does not declare`,
      }
    },
    routes: () => current.routes,
    matchRoute(method, path) {
      const found = current.router.find(method, path)
      if (found === null) return undefined
      const params: Record<string, string> = {}
      for (const [name, value] of Object.entries(found.params)) if (value !== undefined) params[name] = value
      return { route: found.store as MountedRoute, params }
    },
    menu: (location) => current.menus.get(location) ?? [],
    widgets: () => current.widgets,
    template(name) {
      return current.templates.get(name)
    },
    templates: () => [...current.templates.values()],
    translate(namespace, key, language, args = []) {
      // `other:key` names its namespace itself.
      const colon = key.indexOf(':')
      const spec = current.translations.get(colon > 0 ? key.slice(0, colon) : namespace)
      if (spec === undefined) return undefined
      const bareKey = colon > 0 ? key.slice(colon + 1) : key
      for (const candidate of fallbackLanguages(language, defaultLanguage)) {
        const texts = spec.translations[candidate]
        // hasOwn: a key such as `constructor` must not find Object.prototype's.
        if (texts !== undefined && Object.hasOwn(texts, bareKey)) return format(texts[bareKey] ?? '', args)
      }
      return undefined
    },
    errorCode: (qualified) => current.errorCodes.get(qualified),
    errorCodes: () => [...current.errorCodes.values()],
    groups: () => current.groups,
    landingPage: () => current.landingPage,
  }
}

function buildSnapshot(
  registrations: ReadonlyMap<string, Registration>,
  hostMenu: readonly MountedMenuItem[],
  hostTemplates: ReadonlyMap<string, MountedTemplate>,
): Snapshot {
  const entries = [...registrations]
  const { routes, router } = buildRoutes(entries)
  const hidden = new Set(entries.flatMap(([, r]) => r.hidden_menu_items))
  const menus = new Map(
    menuLocations.map((location) => [location, buildMenu(location, hostMenu, hidden, entries)]),
  )
  const landing = entries.find(([, r]) => r.landing_page !== undefined)
  return deepFreeze({
    registrations,
    routes,
    router,
    menus,
    widgets: buildWidgets(entries),
    templates: buildTemplates(entries, hostTemplates),
    translations: buildTranslations(entries),
    errorCodes: buildErrorCodes(entries),
    groups: buildGroups(entries),
    landingPage:
      landing === undefined
        ? undefined
        : { plugin: landing[0], path: mountPath(landing[0], landing[1].landing_page ?? '') },
  })
}

function mountPath(plugin: string, path: string): string {
  return `/plugins/${plugin}${path}`
}

function conflict(message: string, plugin: string): PluginError {
  return new PluginError('already_exists', message, { plugin })
}

function buildRoutes(entries: readonly [string, Registration][]): Pick<Snapshot, 'routes' | 'router'> {
  const router = FindMyWay()
  const routes: MountedRoute[] = []
  const describe = (r: MountedRoute) => `plugin ${r.plugin}'s route ${r.method} ${r.fullPath}`
  for (const [plugin, registration] of entries) {
    for (const spec of registration.routes) {
      const route: MountedRoute = { ...spec, plugin, fullPath: mountPath(plugin, spec.path) }
      // findRoute compares patterns, so `/x/:id` finds `/x/:name`: two routes no request could tell apart.
      const taken = router.findRoute(spec.method, route.fullPath)
      if (taken !== null) {
        throw conflict(
          `${describe(route)} is already served by ${describe(taken.store as MountedRoute)}`,
          plugin,
        )
      }
      try {
        router.on(spec.method, route.fullPath, () => {}, route)
      } catch (error) {
        throw new PluginError('invalid_argument', `${describe(route)}: ${(error as Error).message}`, {
          plugin,
          cause: error,
        })
      }
      routes.push(route)
    }
  }
  return { routes, router }
}

/**
 * The menu of one location: the host's items minus the hidden ones, then each plugin's in load order.
 * An item with the id of an item already at its level (the host's or an earlier plugin's) is that
 * item: it keeps its own label and path, and the new item's children join its children. Each level
 * is sorted by `order`; items without one come after, in the order they were added.
 */
function buildMenu(
  location: MenuLocation,
  hostMenu: readonly MountedMenuItem[],
  hidden: ReadonlySet<string>,
  entries: readonly [string, Registration][],
): MountedMenuItem[] {
  const withoutHidden = (items: readonly MountedMenuItem[]): MountedMenuItem[] =>
    items
      .filter((item) => !hidden.has(item.id))
      .map((item) => ({ ...item, children: withoutHidden(item.children) }))
  const top = withoutHidden(hostMenu.filter((item) => item.location === location))
  const join = (level: MountedMenuItem[], item: MenuItem, plugin: string): void => {
    let target = level.find((existing) => existing.id === item.id)
    if (target === undefined) {
      const { children: _, ...fields } = item
      target = { ...fields, location, plugin, children: [] }
      level.push(target)
    }
    for (const child of item.children ?? []) join(target.children, child, plugin)
  }
  for (const [plugin, registration] of entries) {
    for (const item of registration.menu_items) if (item.location === location) join(top, item, plugin)
  }
  const rank = (item: MountedMenuItem) => item.order ?? Number.POSITIVE_INFINITY
  // Array.prototype.sort is stable: equal ranks keep the order they were added in.
  const sort = (items: MountedMenuItem[]): MountedMenuItem[] =>
    items
      .map((item) => ({ ...item, children: sort(item.children) }))
      .sort((a, b) => (rank(a) === rank(b) ? 0 : rank(a) < rank(b) ? -1 : 1))
  return sort(top)
}

function buildWidgets(entries: readonly [string, Registration][]): MountedWidget[] {
  const widgets: MountedWidget[] = []
  for (const [plugin, registration] of entries) {
    const ids = new Set<string>()
    for (const widget of registration.widgets) {
      if (ids.has(widget.id)) throw conflict(`plugin ${plugin} declares widget ${widget.id} twice`, plugin)
      ids.add(widget.id)
      widgets.push({ ...widget, plugin })
    }
  }
  return widgets
}

/**
 * The host's templates, then the plugins'. One template name belongs to one plugin at most: two
 * plugins overriding one host template, or adding one name, conflict. A plugin adding (not
 * overriding) a name the host has conflicts with the host.
 */
function buildTemplates(
  entries: readonly [string, Registration][],
  hostTemplates: ReadonlyMap<string, MountedTemplate>,
): Map<string, MountedTemplate> {
  const templates = new Map(hostTemplates)
  const kind = (t: TemplateSpec) => (t.override ? 'override of' : 'template')
  for (const [plugin, registration] of entries) {
    for (const spec of registration.templates) {
      const taken = templates.get(spec.name)
      if (taken?.plugin !== undefined) {
        throw conflict(
          `plugin ${plugin}'s ${kind(spec)} ${spec.name} conflicts with plugin ${taken.plugin}'s ${kind(taken)} ${spec.name}`,
          plugin,
        )
      }
      if (taken !== undefined && !spec.override) {
        throw conflict(
          `plugin ${plugin} adds template ${spec.name}, which the host has: declare it as an override`,
          plugin,
        )
      }
      templates.set(spec.name, { ...spec, plugin })
    }
  }
  return templates
}

function buildTranslations(entries: readonly [string, Registration][]): Map<string, I18nSpec> {
  const translations = new Map<string, I18nSpec>()
  const owners = new Map<string, string>()
  for (const [plugin, registration] of entries) {
    const spec = registration.i18n
    if (spec === undefined) continue
    const owner = owners.get(spec.namespace)
    if (owner !== undefined) {
      throw conflict(
        `plugin ${plugin}'s i18n namespace ${spec.namespace} is plugin ${owner}'s already`,
        plugin,
      )
    }
    owners.set(spec.namespace, plugin)
    translations.set(spec.namespace, spec)
  }
  return translations
}

function buildErrorCodes(entries: readonly [string, Registration][]): Map<string, MountedErrorCode> {
  const codes = new Map<string, MountedErrorCode>()
  for (const [plugin, registration] of entries) {
    for (const spec of registration.error_codes) {
      const qualified = `${plugin}:${spec.code}`
      if (codes.has(qualified))
        throw conflict(`plugin ${plugin} declares error code ${spec.code} twice`, plugin)
      codes.set(qualified, { ...spec, plugin, qualified })
    }
  }
  return codes
}

/** One RBAC group per name, listed with the first plugin (in load order) that declares it. */
function buildGroups(entries: readonly [string, Registration][]): (GroupSpec & { plugin: string })[] {
  const groups = new Map<string, GroupSpec & { plugin: string }>()
  for (const [plugin, registration] of entries) {
    for (const group of registration.groups)
      if (!groups.has(group.name)) groups.set(group.name, { ...group, plugin })
  }
  return [...groups.values()]
}

/** `pt-BR` → `pt-BR`, `pt`, then the default language. */
function fallbackLanguages(language: string, defaultLanguage: string): string[] {
  const primary = language.split('-')[0] ?? language
  return [...new Set([language, primary, defaultLanguage])]
}

/** Replaces `{0}`, `{1}`, … with the arguments; a placeholder without an argument stays as it is. */
function format(text: string, args: readonly unknown[]): string {
  return text.replace(/\{(\d+)\}/g, (placeholder, index: string) =>
    Number(index) < args.length ? String(args[Number(index)]) : placeholder,
  )
}

/** Freezes plain objects, arrays and maps all the way down (the router is left as it is: it is never handed out). */
function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value
  if (value instanceof Map) {
    for (const item of value.values()) deepFreeze(item)
  } else if (Array.isArray(value) || Object.getPrototypeOf(value) === Object.prototype) {
    for (const item of Object.values(value)) deepFreeze(item)
  } else {
    return value
  }
  return Object.freeze(value)
}
