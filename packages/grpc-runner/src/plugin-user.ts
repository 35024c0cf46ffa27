import { spawn } from 'node:child_process'
import { chmodSync, chownSync, mkdtempSync, realpathSync, rmSync, type Stats, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import type { Logger } from '@corral/types'
import { PluginError } from '@corral/types'

/**
 * The OS user and group plugin processes run as instead of the host's: a user of their own keeps
 * them out of the host's files and processes (`/proc/<host pid>/environ`, its database). The
 * process gets no supplementary group. Starting a process as another user takes root (or
 * CAP_SETUID, CAP_SETGID and CAP_CHOWN).
 */
export interface PluginUser {
  uid: number
  gid: number
}

/** Refuses a user that is no user to run as: not a uid and gid, root itself or root's group. */
export function checkPluginUser(user: PluginUser): void {
  const isId = (id: number) => Number.isInteger(id) && id >= 0 && id < 2 ** 32 - 1
  if (!isId(user.uid) || !isId(user.gid)) {
    throw new PluginError('invalid_argument', `pluginUser ${describeUser(user)} is not a uid and a gid`)
  }
  if (user.uid === 0) {
    throw new PluginError('invalid_argument', 'pluginUser is root: plugins would run with every right')
  }
  if (user.gid === 0) {
    throw new PluginError(
      'invalid_argument',
      `pluginUser ${describeUser(user)} is in group root: plugins would read what root's group may`,
    )
  }
}

/** What the plugin user must be able to do with a path: read a file, run a program, enter or write in a folder. */
export type PluginUserAccess = 'read' | 'run' | 'enter' | 'write in'

const accessBits: Record<PluginUserAccess, number> = { read: 4, run: 1, enter: 1, 'write in': 3 }

/**
 * Fails with `load_failed`, naming the path and the user, unless `user` can reach `path` (search on
 * every folder above its real path) and do `access` with it. Decided by owner, group and mode bits
 * as the kernel would for a process without supplementary groups (ACLs are not read): said here
 * plainly, the failure would otherwise be the plugin's own EACCES on its stderr, or the launcher's.
 * A path that does not exist passes: the start reports it.
 */
export function assertPluginUserCan(
  user: PluginUser,
  access: PluginUserAccess,
  path: string,
  plugin: string,
): void {
  let real: string
  try {
    real = realpathSync(path)
  } catch {
    return
  }
  const refuse = (why: string) =>
    new PluginError(
      'load_failed',
      `${describeUser(user)}, the user plugins run as, cannot ${access} ${path}${why}`,
      { plugin },
    )
  const folders: string[] = []
  for (let folder = dirname(real); ; folder = dirname(folder)) {
    folders.unshift(folder)
    if (folder === dirname(folder)) break
  }
  for (const folder of folders) {
    if (!permits(statSync(folder), user, 1)) throw refuse(`: it cannot enter ${folder}`)
  }
  if (!permits(statSync(real), user, accessBits[access])) throw refuse(real === path ? '' : ` (${real})`)
}

function permits(stat: Stats, user: PluginUser, bits: number): boolean {
  // The kernel uses the owner's bits for the owner and the group's for the group, even where the
  // others' would allow more.
  const shift = stat.uid === user.uid ? 6 : stat.gid === user.gid ? 3 : 0
  return ((stat.mode >> shift) & bits) === bits
}

/** `uid 65534 (gid 65534)`: how errors name the plugin user. */
export function describeUser(user: PluginUser): string {
  return `uid ${user.uid} (gid ${user.gid})`
}

/** The folders of one plugin process, and how to remove them. */
export interface PluginFolders {
  /** The plugin's own: its socket (`PLUGIN_UNIX_SOCKET_DIR`) and temporary files (`TMPDIR`). */
  socketDir: string
  /** Where the host's broker sockets are. */
  brokerDir: string
  /** Removes what was made for this process; never rejects. */
  remove(): Promise<void>
}

/**
 * Makes a plugin process's folders for `user` in the host's temporary folder. Its own is owned by
 * it, mode 0700 (unless the caller gives one, which must be writable by it). The host's broker
 * folder is the host's, mode 0711: the plugin enters it but cannot list or write in it, and each
 * socket there is handed to it. Not in the plugin's folder: there the plugin could swap a socket
 * for a link between the host's bind and chown.
 */
export function createPluginUserFolders(
  user: PluginUser,
  plugin: string,
  logger: Logger,
  givenSocketDir?: string,
): PluginFolders {
  const brokerDir = mkdtempSync(join(tmpdir(), 'corral-broker-'))
  let made: string | undefined
  try {
    chmodSync(brokerDir, 0o711)
    if (givenSocketDir === undefined) {
      made = mkdtempSync(join(tmpdir(), 'corral-grpc-'))
      try {
        chownSync(made, user.uid, user.gid)
      } catch (error) {
        throw new PluginError(
          'load_failed',
          `cannot give ${describeUser(user)} its socket folder ${made}: ${(error as Error).message} (running plugins as another user takes root)`,
          { plugin, cause: error },
        )
      }
    }
    assertPluginUserCan(user, 'write in', givenSocketDir ?? (made as string), plugin)
    assertPluginUserCan(user, 'enter', brokerDir, plugin)
  } catch (error) {
    // Nothing has run as the plugin user yet: these are still the host's alone to remove.
    rmSync(brokerDir, { recursive: true, force: true })
    if (made !== undefined) rmSync(made, { recursive: true, force: true })
    throw error
  }
  const own = made
  return {
    socketDir: givenSocketDir ?? (made as string),
    brokerDir,
    async remove() {
      rmSync(brokerDir, { recursive: true, force: true })
      if (own !== undefined) await removeAsUser(own, user, plugin, logger)
    },
  }
}

/**
 * Removes a folder the plugin user owns with that user's rights: removed by the host, a link the
 * plugin (or a process it left behind) swaps in while the removal walks the tree would lead the
 * host's rights to whatever the link names.
 */
function removeAsUser(dir: string, user: PluginUser, plugin: string, logger: Logger): Promise<void> {
  return new Promise((resolve) => {
    const fail = (why: string) => {
      logger.log('warn', `could not remove plugin folder ${dir}: ${why}`, { plugin })
      resolve()
    }
    const child = spawn('rm', ['-rf', '--', dir], {
      uid: user.uid,
      gid: user.gid,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      stdio: 'ignore',
    })
    child.once('error', (error) => fail(error.message))
    child.once('exit', (code) => (code === 0 ? resolve() : fail(`rm exited with code ${code}`)))
  })
}
