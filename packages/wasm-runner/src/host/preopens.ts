import { realpathSync, statSync } from 'node:fs'
import path from 'node:path'
import { isInsideFolder } from '@corral/manifest'
import type { Permission } from '@corral/types'
import { PluginError } from '@corral/types'
import type { Preopen } from '../worker/fs-sandbox.js'

/** A directory an `fs` permission may grant: the plugin's folder itself, or one inside it. */
function isGrantable(root: string, dir: string): boolean {
  return dir === root || isInsideFolder(root, dir)
}

/**
 * The directories a plugin's `fs` permissions grant, resolved once at load: each scope entry names
 * a directory inside the plugin's folder (`data`), read-only unless `write` is granted. An entry that
 * leaves the folder (by `..` or a symlink) or is not an existing directory is refused with
 * `load_failed`.
 */
export function resolvePreopens(pluginDir: string, permissions: readonly Permission[]): Preopen[] {
  const root = realpathSync(pluginDir)
  const byPath = new Map<string, Preopen>()
  for (const permission of permissions) {
    if (permission.type !== 'fs') continue
    for (const entry of permission.scope) {
      const lexical = path.resolve(root, entry)
      let hostPath: string
      try {
        hostPath = realpathSync(lexical)
      } catch {
        throw new PluginError(
          'load_failed',
          `fs permission ${entry}: no such directory in the plugin's folder`,
        )
      }
      if (!isGrantable(root, lexical) || !isGrantable(root, hostPath)) {
        throw new PluginError('load_failed', `fs permission ${entry}: leaves the plugin's folder`)
      }
      if (!statSync(hostPath).isDirectory()) {
        throw new PluginError('load_failed', `fs permission ${entry}: not a directory`)
      }
      const guestPath = `/${path.relative(root, lexical).split(path.sep).join('/')}`
      const existing = byPath.get(guestPath)
      const writable = permission.access.includes('write') || existing?.writable === true
      byPath.set(guestPath, { guestPath, hostPath, writable })
    }
  }
  return [...byPath.values()]
}
