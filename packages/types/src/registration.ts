import type { Permission } from './permission.js'

/** Who a plugin is. */
export interface PluginIdentity {
  /** `^[a-z][a-z0-9-]{1,62}$`; also the prefix of the plugin's error codes, tables and cache keys. */
  name: string
  /** A semver version. */
  version: string
  description?: string
  author?: string
  /** An SPDX license expression. */
  license?: string
  homepage?: string
  /** A semver range the host's version must satisfy. */
  min_host_version?: string
}

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'

/**
 * An HTTP route the host mounts for the plugin, under `/plugins/<name>`. A request becomes
 * `call(handler, {method, path, params, query, headers, body, user})`.
 */
export interface RouteSpec {
  method: HttpMethod
  /** Path below the plugin's mount point, with `:param` segments: `/reports/:day`. */
  path: string
  /** The plugin function that answers. */
  handler: string
  /** Checks run before the handler, in order: `auth`, `admin`, `group:<name>`. */
  middleware: string[]
  description?: string
}

/** The signed-in user a route sees; `null` on a route without `auth`. */
export interface RouteUser {
  id: string
  name: string
  /** The RBAC groups the user belongs to. */
  groups: string[]
  admin: boolean
}

/**
 * What a route's handler receives: `call(handler, request)`. Every text is a string, so a route's
 * function takes plain JSON whatever the client sent.
 */
export interface RouteRequest {
  method: HttpMethod
  /** Below the plugin's mount point, without the query: `/report/2026-11-21`. */
  path: string
  /** The route's `:param` values, decoded: `{day: '2026-11-21'}`. */
  params: Record<string, string>
  /** Decoded; a repeated parameter has its first value. */
  query: Record<string, string>
  /** Names in lower case; repeated ones joined with `, `; the user's credentials left out. */
  headers: Record<string, string>
  /** The body as UTF-8 text; `''` when there is none. */
  body: string
  user: RouteUser | null
}

/**
 * What a route's handler answers. `body` is text (JSON or HTML), sent as UTF-8 with the headers
 * given. A failure is not a response: the handler throws a `PluginError` with one of the plugin's
 * error codes, and the host answers with that code's HTTP status.
 */
export interface RouteResponse {
  status: number
  headers: Record<string, string>
  body: string
}

export type MenuLocation = 'admin' | 'agent' | 'customer'

/** A menu entry; entries nest through `children`. */
export interface MenuItem {
  id: string
  label: string
  location: MenuLocation
  /** Where the entry leads; absent for a parent that only groups children. */
  path?: string
  icon?: string
  order?: number
  /** Only members of this group see the entry. */
  group?: string
  children?: MenuItem[]
}

export type WidgetSize = 'small' | 'medium' | 'large' | 'full'

/** A dashboard widget: the handler returns the widget's HTML. */
export interface WidgetSpec {
  id: string
  title: string
  handler: string
  size: WidgetSize
  /** Re-render every this many seconds; absent means never. */
  refresh_seconds?: number
}

/** A scheduled job: `call(handler, {job, scheduled_at})` on every match of `cron`. */
export interface JobSpec {
  id: string
  /** A five-field cron expression. */
  cron: string
  handler: string
  /** Milliseconds; absent means the plugin's call timeout, which also caps it. */
  timeout?: number
  enabled: boolean
}

/** A template the plugin adds, or a host template it overrides. */
export interface TemplateSpec {
  name: string
  /** The template's text. */
  content: string
  /** True when it replaces a host template of the same name. */
  override: boolean
}

/** The plugin's translations: `translations[language][key]`. */
export interface I18nSpec {
  namespace: string
  languages: string[]
  translations: Record<string, Record<string, string>>
}

/** An error code the plugin defines; it is surfaced as `<plugin>:<code>` with this HTTP status. */
export interface ErrorCodeSpec {
  code: string
  message: string
  http_status: number
}

/** An RBAC group created for the plugin's users. */
export interface GroupSpec {
  name: string
  description?: string
}

/**
 * Events the plugin takes: each event of a matching type becomes `call(handler, {type, data, plugin,
 * at})` (`plugin` is the one that published it). Delivered only while the plugin's grant has an
 * `events` permission covering the type; the host's own `corral.*` types only to a grant (and a
 * subscription) that names them with that prefix.
 */
export interface EventSubscription {
  /** An event type glob: `stats.*`. */
  type: string
  /** The plugin function that takes each event. */
  handler: string
}

/** What a plugin adds to the host. Every list may be empty. */
export interface PluginCapabilities {
  routes: RouteSpec[]
  menu_items: MenuItem[]
  widgets: WidgetSpec[]
  jobs: JobSpec[]
  templates: TemplateSpec[]
  i18n?: I18nSpec
  error_codes: ErrorCodeSpec[]
  groups: GroupSpec[]
  /** Ids of the host's default menu items to hide while the plugin is loaded. */
  hidden_menu_items: string[]
  /** The events the plugin subscribes to (absent: none). */
  events?: EventSubscription[]
  /** The path the host shows first when the plugin is the landing page. */
  landing_page?: string
  /**
   * Permissions the plugin says it uses. Informational: what a plugin gets comes from its manifest's
   * request and its policy, and a registration that claims more than its manifest requests is refused.
   */
  permissions: Permission[]
}

/** What `register()` returns: identity and capabilities, self-described by the plugin. */
export interface Registration extends PluginIdentity, PluginCapabilities {}
