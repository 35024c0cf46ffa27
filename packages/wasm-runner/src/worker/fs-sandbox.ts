import * as fs from 'node:fs'
import path from 'node:path'
import { isInsideFolder } from '@corral/manifest/inside-folder'

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
  loop: 32,
  mfile: 33,
  nfile: 41,
  noent: 44,
  nosys: 52,
  notdir: 54,
  notempty: 55,
  notsup: 58,
  perm: 63,
  rofs: 69,
  spipe: 70,
  notcapable: 76,
} as const

/** Whether `candidate` is `root` or lies beneath it. */
function isInside(root: string, candidate: string): boolean {
  return candidate === root || isInsideFolder(root, candidate)
}

/** A directory the guest holds open: a host descriptor, never a path to open again. */
export interface SandboxDir {
  /** The host descriptor. */
  fd: number
  /** The preopen it lies in. */
  preopen: Preopen
  /** The preopen's own handle; absent on the preopen's. */
  root?: SandboxDir
  /** The names from the preopen down to it, as they were when it was opened; `..` past it goes by them. */
  components: readonly string[]
}

/** The path through which a directory descriptor reaches a name inside it, whatever its path now. */
export function pathAt(dirFd: number, name: string): string {
  return `/proc/self/fd/${dirFd}/${name}`
}

/**
 * Refuses a descriptor that is not inside its preopen: what the kernel says it opened, not the
 * path that was asked for.
 */
export function verifyInside(fd: number, preopen: Preopen): void {
  const opened = fs.readlinkSync(`/proc/self/fd/${fd}`)
  if (!isInside(preopen.hostPath, opened))
    throw new SandboxRefusal(errno.notcapable, 'the opened file is outside its directory')
}

/** How many symlinks one path may pass through (Linux's own limit). */
const maxSymlinks = 40

const walkFlags =
  fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK

/**
 * Finds where a guest path leads from the directory `dir`, and runs `last` on the final name in
 * its parent's descriptor, with the names from the preopen down to that parent. Refuses every way
 * out: an absolute path, `..` past the preopen, and any symlink whose target leaves it.
 *
 * Race-free by construction: each component is opened relative to the descriptor of the
 * directory already reached (`/proc/self/fd/N/name`), with `O_NOFOLLOW`, so no symlink is ever
 * followed by the kernel. A symlink met on the way (one that `last` refuses with `ELOOP` or
 * `ENOTDIR` when `followLast`) is read and its target spliced into the path, checked again from
 * the top; `..` is taken by name. Renaming directories or swapping in symlinks while this runs can
 * change which file inside the preopen is reached, never lead outside it.
 */
export function walkBeneath<T>(
  dir: SandboxDir,
  guestPath: string,
  followLast: boolean,
  last: (parentFd: number, name: string, components: readonly string[]) => T,
): T {
  if (guestPath.includes('\0')) throw new SandboxRefusal(errno.inval, 'NUL in path')
  if (guestPath.startsWith('/')) throw new SandboxRefusal(errno.notcapable, `absolute path ${guestPath}`)
  let base = dir
  let names = guestPath.split('/')
  for (let links = 0; ; links++) {
    if (links > maxSymlinks) throw new SandboxRefusal(errno.loop, `${guestPath}: too many symlinks`)
    const { up, rest } = normalize(names)
    if (up > 0) {
      if (up > base.components.length)
        throw new SandboxRefusal(errno.notcapable, `${guestPath} leaves its directory`)
      names = [...base.components.slice(0, base.components.length - up), ...rest]
      base = base.root ?? base
      continue
    }
    if (rest.length === 0) rest.push('.')
    const start = base.fd
    let cur = start
    const walked: string[] = []
    try {
      let link: { target: string; remaining: string[] } | undefined
      for (const [i, name] of rest.entries()) {
        const isLast = i === rest.length - 1
        try {
          if (isLast) return last(cur, name, [...base.components, ...walked])
          const next = fs.openSync(pathAt(cur, name), walkFlags)
          if (cur !== start) fs.closeSync(cur)
          cur = next
          walked.push(name)
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code
          if ((isLast && !followLast) || (code !== 'ELOOP' && code !== 'ENOTDIR')) throw error
          const target = readLinkAt(cur, name)
          if (target === undefined) throw error
          link = { target, remaining: rest.slice(i + 1) }
          break
        }
      }
      if (link === undefined) throw new Error('unreachable: the walk ends at its last name')
      if (link.target === '') throw new SandboxRefusal(errno.noent, `${guestPath}: empty symlink`)
      if (path.isAbsolute(link.target)) {
        if (!isInside(base.preopen.hostPath, link.target))
          throw new SandboxRefusal(errno.notcapable, `${guestPath}: a symlink leads outside its directory`)
        const inside = path.relative(base.preopen.hostPath, link.target)
        names = [...inside.split(path.sep), ...link.remaining]
        base = base.root ?? base
      } else {
        names = [...walked, ...link.target.split('/'), ...link.remaining]
      }
    } finally {
      if (cur !== start) fs.closeSync(cur)
    }
  }
}

/** A path's names without `.` and empty ones, `..` taken by name; `up` counts the `..` left over. */
function normalize(names: readonly string[]): { up: number; rest: string[] } {
  const rest: string[] = []
  let up = 0
  for (const name of names) {
    if (name === '' || name === '.') continue
    if (name !== '..') rest.push(name)
    else if (rest.length > 0) rest.pop()
    else up++
  }
  return { up, rest }
}

function readLinkAt(dirFd: number, name: string): string | undefined {
  try {
    return fs.readlinkSync(pathAt(dirFd, name))
  } catch {
    return undefined
  }
}
