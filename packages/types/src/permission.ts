/**
 * The kinds of resource a plugin can ask for. `log` and `i18n.translate` need none: every plugin
 * has them.
 */
export type PermissionType = 'db' | 'cache' | 'http' | 'email' | 'config' | 'plugin_call' | 'events' | 'fs'

/** Every {@link PermissionType}, in one list. */
export const permissionTypes: readonly PermissionType[] = [
  'db',
  'cache',
  'http',
  'email',
  'config',
  'plugin_call',
  'events',
  'fs',
]

/** What a plugin may do with a `db`, `cache` or `fs` resource. */
export type Access = 'read' | 'write'

/**
 * One permission, as a manifest requests it and as a policy grants it.
 *
 * `scope` is a list of globs (`*` matches any run of characters, nothing else is special) whose
 * meaning depends on the type:
 *
 * | type | scope matches | access |
 * |---|---|---|
 * | `db` | table names (`stats_*`) | read, write |
 * | `cache` | keys inside the plugin's own namespace | read, write |
 * | `http` | host names, optionally with a port (`api.example.com`, `*.example.com`, `localhost:8080`) | — |
 * | `email` | recipient domains (`example.com`) | — |
 * | `config` | config keys (`smtp.*`) | — |
 * | `plugin_call` | plugin names | — |
 * | `events` | event types (`ticket.*`) | — |
 * | `fs` | directories inside the plugin's folder (`data`) | read, write |
 */
export interface Permission {
  type: PermissionType
  /** For `db`, `cache` and `fs` only; empty elsewhere. */
  access: Access[]
  scope: string[]
}
