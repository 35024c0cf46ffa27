import { lstatSync, realpathSync, statSync } from 'node:fs'
import path from 'node:path'
import type { Permission } from '@corral/types'
import { PluginError } from '@corral/types'

/** A directory a guest may reach through WASI, as the host resolved it. */
export interface Preopen {
  /** The name the guest sees (`/data`). */
  guestPath: string
  /** The real host path, symlinks resolved. */
  hostPath: string
  writable: boolean
}

/** Why a path was refused: the WASI errno the guest gets. */
export class SandboxRefusal extends Error {
  override readonly name = 'SandboxRefusal'
  constructor(
    readonly errno: number,
    message: string,
  ) {
    super(message)
  }
}

/** WASI errno values the sandbox answers with. */
export const errno = {
  success: 0,
  acces: 2,
  badf: 8,
  exist: 20,
  fault: 21,
  inval: 28,
  io: 29,
  isdir: 31,
  noent: 44,
  nosys: 52,
  notdir: 54,
  notempty: 55,
  perm: 63,
  rofs: 69,
  spipe: 70,
  notcapable: 76,
} as const

function isInside(root: string, candidate: string): boolean {
  const rel = path.relative(root, candidate)
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel))
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
      if (!isInside(root, lexical) || !isInside(root, hostPath)) {
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

/**
 * Resolves a guest path relative to a directory inside a preopen, refusing every way out: an
 * absolute path, `..` past the preopen's root, and a symlink (anywhere on the path, dangling or
 * not) that points outside. Returns a host path with no symlink left in it, so the caller can open
 * it without following links.
 */
export function resolveInside(root: string, dir: string, guestPath: string): string {
  if (guestPath.includes('\0')) throw new SandboxRefusal(errno.inval, 'NUL in path')
  if (guestPath.startsWith('/')) throw new SandboxRefusal(errno.notcapable, `absolute path ${guestPath}`)
  const lexical = path.resolve(dir, guestPath)
  if (!isInside(root, lexical))
    throw new SandboxRefusal(errno.notcapable, `${guestPath} leaves its directory`)
  let real: string
  try {
    real = realpathSync(lexical)
  } catch {
    // It does not exist (yet): its parent must, inside the root, and it must not be a dangling link.
    let parent: string
    try {
      parent = realpathSync(path.dirname(lexical))
    } catch {
      throw new SandboxRefusal(errno.noent, `${guestPath}: no such directory`)
    }
    real = path.join(parent, path.basename(lexical))
    try {
      if (lstatSync(real).isSymbolicLink()) {
        throw new SandboxRefusal(errno.notcapable, `${guestPath} is a dangling symlink`)
      }
    } catch (error) {
      if (error instanceof SandboxRefusal) throw error
    }
  }
  if (!isInside(root, real))
    throw new SandboxRefusal(errno.notcapable, `${guestPath} resolves outside its directory`)
  return real
}
