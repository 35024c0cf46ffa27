/**
 * WASI preview 1, written for the sandbox rather than borrowed from `node:wasi` (which says it is
 * not one): clocks and random always; no arguments and no environment; stdout and stderr go to the
 * host's log; files only inside the granted directories, through {@link walkBeneath}, and only
 * regular files and directories; everything else answers `ENOSYS`.
 */
import { randomFillSync } from 'node:crypto'
import * as fs from 'node:fs'
import { GuestCallError } from '../abi/guest-abi.js'
import { wasiFunctionNames } from '../abi/wasi-names.js'
import type { Preopen, SandboxDir } from './fs-sandbox.js'
import { errno, pathAt, SandboxRefusal, verifyInside, walkBeneath } from './fs-sandbox.js'

/** What the guest's WASI may reach. */
export interface WasiOptions {
  preopens: Preopen[]
  /**
   * How many files and directories the guest may hold open at once beside its preopens
   * (`limits.max_open_files`); past it, `path_open` fails with `EMFILE`.
   */
  maxOpenFiles: number
}

const filetype = { unknown: 0, characterDevice: 2, directory: 3, regularFile: 4, symbolicLink: 7 } as const
const rights = { fdRead: 1n << 1n, fdWrite: 1n << 6n } as const
const oflags = { creat: 1, directory: 2, excl: 4, trunc: 8 } as const
const fdflagsAppend = 1
const lookupSymlinkFollow = 1
const allRights = (1n << 30n) - 1n

interface OpenEntry {
  kind: 'stdio' | 'dir' | 'file'
  /** For a directory: its handle. */
  dir?: SandboxDir
  /** The host descriptor, for files and directories. */
  fd?: number
  position: bigint
  writable: boolean
  append: boolean
}

function typeOf(stats: fs.Stats): number {
  if (stats.isDirectory()) return filetype.directory
  if (stats.isFile()) return filetype.regularFile
  if (stats.isSymbolicLink()) return filetype.symbolicLink
  if (stats.isCharacterDevice()) return filetype.characterDevice
  return filetype.unknown
}

function errnoOf(error: unknown): number {
  if (error instanceof SandboxRefusal) return error.errno
  switch ((error as NodeJS.ErrnoException).code) {
    case 'ENOENT':
      return errno.noent
    case 'EEXIST':
      return errno.exist
    case 'ENOTDIR':
      return errno.notdir
    case 'EISDIR':
      return errno.isdir
    case 'ENOTEMPTY':
      return errno.notempty
    case 'EACCES':
      return errno.acces
    case 'EPERM':
      return errno.perm
    case 'ELOOP':
      return errno.notcapable
    case 'EMFILE':
      return errno.mfile
    case 'ENFILE':
      return errno.nfile
    case 'ENXIO':
      return errno.notsup
    default:
      return errno.io
  }
}

/** Opens a granted directory, which must still be where the plugin's load found it. */
function openPreopen(preopen: Preopen): number {
  let fd: number | undefined
  try {
    fd = fs.openSync(
      preopen.hostPath,
      fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW,
    )
    if (fs.readlinkSync(`/proc/self/fd/${fd}`) === preopen.hostPath) return fd
  } catch {
    // reported below
  }
  if (fd !== undefined) fs.closeSync(fd)
  throw new GuestCallError(
    'load_failed',
    `${preopen.guestPath} is no longer where the plugin loaded it`,
    true,
  )
}

/**
 * Builds the `wasi_snapshot_preview1` import object for one guest. `memory` gives the guest's
 * memory once it exists; `write` receives what the guest prints (fd 1 and 2).
 */
export function createWasiImports(
  options: WasiOptions,
  memory: () => WebAssembly.Memory,
  write: (stream: 1 | 2, text: string) => void,
): Record<string, (...args: never[]) => unknown> {
  const table = new Map<number, OpenEntry>()
  for (const stream of [0, 1, 2]) {
    table.set(stream, { kind: 'stdio', position: 0n, writable: stream !== 0, append: false })
  }
  options.preopens.forEach((preopen, i) => {
    const fd = openPreopen(preopen)
    const dir: SandboxDir = { fd, preopen, components: [] }
    table.set(3 + i, { kind: 'dir', dir, fd, position: 0n, writable: preopen.writable, append: false })
  })
  let nextFd = 3 + options.preopens.length
  /** Files and directories the guest opened and holds, against `maxOpenFiles`. */
  let held = 0
  const decoder = new TextDecoder()
  const encoder = new TextEncoder()

  const view = () => new DataView(memory().buffer)
  const bytes = () => new Uint8Array(memory().buffer)
  const readString = (ptr: number, len: number) => {
    if (ptr + len > memory().buffer.byteLength) throw new SandboxRefusal(errno.fault, 'path out of bounds')
    return decoder.decode(bytes().subarray(ptr, ptr + len))
  }
  /** The iovecs at `ptr` as views of guest memory. */
  const iovecs = (ptr: number, count: number) => {
    const dv = view()
    const mem = bytes()
    return Array.from({ length: count }, (_, i) => {
      const base = dv.getUint32(ptr + i * 8, true)
      const len = dv.getUint32(ptr + i * 8 + 4, true)
      return mem.subarray(base, base + len)
    })
  }
  const entry = (fd: number, kind?: OpenEntry['kind']) => {
    const found = table.get(fd)
    if (found === undefined || (kind !== undefined && found.kind !== kind))
      throw new SandboxRefusal(errno.badf, 'bad fd')
    return found
  }
  const dirEntry = (fd: number) => entry(fd, 'dir').dir as SandboxDir
  const writeFilestat = (ptr: number, stats: fs.Stats) => {
    const dv = view()
    dv.setBigUint64(ptr, BigInt(stats.dev), true)
    dv.setBigUint64(ptr + 8, BigInt(stats.ino), true)
    dv.setUint8(ptr + 16, typeOf(stats))
    dv.setBigUint64(ptr + 24, BigInt(stats.nlink), true)
    dv.setBigUint64(ptr + 32, BigInt(stats.size), true)
    dv.setBigUint64(ptr + 40, BigInt(Math.round(stats.atimeMs * 1e6)), true)
    dv.setBigUint64(ptr + 48, BigInt(Math.round(stats.mtimeMs * 1e6)), true)
    dv.setBigUint64(ptr + 56, BigInt(Math.round(stats.ctimeMs * 1e6)), true)
  }
  /**
   * Runs a syscall body; a refusal or a Node error becomes its errno. Every `i32` WASI passes is
   * unsigned (pointers, lengths, descriptors, flags), but reaches JavaScript signed: a pointer at or
   * above 2 GiB would read as negative, and `subarray` counts a negative index from the end.
   */
  const sys =
    <A extends unknown[]>(body: (...args: A) => unknown) =>
    (...args: A): number => {
      for (let i = 0; i < args.length; i++) {
        const arg = args[i]
        if (typeof arg === 'number') args[i] = arg >>> 0
      }
      try {
        const result = body(...args)
        return typeof result === 'number' ? result : errno.success
      } catch (error) {
        if (error instanceof GuestCallError || error instanceof WebAssembly.RuntimeError) throw error
        return errnoOf(error)
      }
    }
  const nosys = () => errno.nosys
  const empty = sys((countPtr: number, sizePtr: number) => {
    view().setUint32(countPtr, 0, true)
    view().setUint32(sizePtr, 0, true)
  })

  const imports: Record<string, (...args: never[]) => unknown> = {
    args_get: () => errno.success,
    args_sizes_get: empty,
    environ_get: () => errno.success,
    environ_sizes_get: empty,
    clock_res_get: sys((_id: number, ptr: number) => view().setBigUint64(ptr, 1000n, true)),
    clock_time_get: sys((id: number, _precision: bigint, ptr: number) => {
      // 0 is the wall clock; the monotonic and CPU-time clocks all read the monotonic one.
      view().setBigUint64(ptr, id === 0 ? BigInt(Date.now()) * 1_000_000n : process.hrtime.bigint(), true)
    }),
    random_get: sys((ptr: number, len: number) => {
      randomFillSync(bytes().subarray(ptr, ptr + len))
    }),
    sched_yield: () => errno.success,
    proc_exit: (code: number) => {
      throw new GuestCallError('plugin_trap', `the guest called proc_exit(${code})`, true)
    },
    fd_write: sys((fd: number, iovs: number, count: number, writtenPtr: number) => {
      const target = entry(fd)
      let written = 0
      for (const chunk of iovecs(iovs, count)) {
        if (target.kind === 'stdio') {
          if (fd === 0) return errno.badf
          write(fd as 1 | 2, decoder.decode(chunk))
        } else if (target.kind === 'file' && target.writable) {
          const position = target.append ? null : Number(target.position)
          const n = fs.writeSync(target.fd as number, chunk, 0, chunk.length, position)
          if (!target.append) target.position += BigInt(n)
        } else {
          return errno.badf
        }
        written += chunk.length
      }
      view().setUint32(writtenPtr, written, true)
    }),
    fd_read: sys((fd: number, iovs: number, count: number, readPtr: number) => {
      const source = entry(fd)
      let read = 0
      if (source.kind === 'file') {
        for (const chunk of iovecs(iovs, count)) {
          const n = fs.readSync(source.fd as number, chunk, 0, chunk.length, Number(source.position))
          source.position += BigInt(n)
          read += n
          if (n < chunk.length) break
        }
      } else if (source.kind === 'dir') {
        return errno.isdir
      }
      view().setUint32(readPtr, read, true)
    }),
    fd_pread: sys((fd: number, iovs: number, count: number, offset: bigint, readPtr: number) => {
      const source = entry(fd, 'file')
      let read = 0
      for (const chunk of iovecs(iovs, count)) {
        const n = fs.readSync(source.fd as number, chunk, 0, chunk.length, Number(offset) + read)
        read += n
        if (n < chunk.length) break
      }
      view().setUint32(readPtr, read, true)
    }),
    fd_seek: sys((fd: number, offset: bigint, whence: number, resultPtr: number) => {
      const file = table.get(fd)
      if (file === undefined) return errno.badf
      if (file.kind !== 'file') return errno.spipe
      const base =
        whence === 0 ? 0n : whence === 1 ? file.position : BigInt(fs.fstatSync(file.fd as number).size)
      if (whence > 2 || base + offset < 0n) return errno.inval
      file.position = base + offset
      view().setBigUint64(resultPtr, file.position, true)
    }),
    fd_tell: sys((fd: number, resultPtr: number) => {
      view().setBigUint64(resultPtr, entry(fd, 'file').position, true)
    }),
    fd_close: sys((fd: number) => {
      const closing = entry(fd)
      if (closing.kind === 'stdio') return errno.badf
      if (fd < 3 + options.preopens.length) return errno.badf // a preopen stays open
      fs.closeSync(closing.fd as number)
      table.delete(fd)
      held--
    }),
    fd_sync: sys((fd: number) => void entry(fd)),
    fd_datasync: sys((fd: number) => void entry(fd)),
    fd_fdstat_get: sys((fd: number, ptr: number) => {
      const target = entry(fd)
      const dv = view()
      const type =
        target.kind === 'stdio'
          ? filetype.characterDevice
          : target.kind === 'dir'
            ? filetype.directory
            : filetype.regularFile
      dv.setUint8(ptr, type)
      dv.setUint16(ptr + 2, target.append ? fdflagsAppend : 0, true)
      const base = target.writable ? allRights : allRights & ~rights.fdWrite
      dv.setBigUint64(ptr + 8, base, true)
      dv.setBigUint64(ptr + 16, base, true)
    }),
    fd_fdstat_set_flags: nosys,
    fd_filestat_get: sys((fd: number, ptr: number) => {
      const target = entry(fd)
      if (target.kind === 'stdio') {
        view().setUint8(ptr + 16, filetype.characterDevice)
        return
      }
      writeFilestat(ptr, fs.fstatSync(target.fd as number))
    }),
    fd_prestat_get: sys((fd: number, ptr: number) => {
      const pre = options.preopens[fd - 3]
      if (pre === undefined) return errno.badf
      view().setUint8(ptr, 0)
      view().setUint32(ptr + 4, encoder.encode(pre.guestPath).length, true)
    }),
    fd_prestat_dir_name: sys((fd: number, ptr: number, len: number) => {
      const pre = options.preopens[fd - 3]
      if (pre === undefined) return errno.badf
      const name = encoder.encode(pre.guestPath)
      bytes().set(name.subarray(0, len), ptr)
    }),
    fd_readdir: sys((fd: number, buf: number, bufLen: number, cookie: bigint, usedPtr: number) => {
      const dir = dirEntry(fd)
      const names = ['.', '..', ...fs.readdirSync(`/proc/self/fd/${dir.fd}`).sort()]
      const mem = bytes()
      const dv = view()
      let used = 0
      for (let i = Number(cookie); i < names.length && used < bufLen; i++) {
        const name = encoder.encode(names[i])
        const header = new Uint8Array(24)
        const hv = new DataView(header.buffer)
        hv.setBigUint64(0, BigInt(i + 1), true)
        const stats = i < 2 ? undefined : fs.lstatSync(pathAt(dir.fd, names[i] as string))
        hv.setBigUint64(8, BigInt(stats?.ino ?? 0), true)
        hv.setUint32(16, name.length, true)
        hv.setUint8(20, stats === undefined ? filetype.directory : typeOf(stats))
        const record = new Uint8Array(24 + name.length)
        record.set(header)
        record.set(name, 24)
        const n = Math.min(record.length, bufLen - used)
        mem.set(record.subarray(0, n), buf + used)
        used += n
      }
      dv.setUint32(usedPtr, used, true)
    }),
    path_open: sys(
      (
        fd: number,
        _dirflags: number,
        pathPtr: number,
        pathLen: number,
        open: number,
        rightsBase: bigint,
        _inheriting: bigint,
        fdflags: number,
        resultPtr: number,
      ) => {
        const from = dirEntry(fd)
        const wantsWrite =
          (rightsBase & rights.fdWrite) !== 0n ||
          (open & (oflags.creat | oflags.trunc)) !== 0 ||
          (fdflags & fdflagsAppend) !== 0
        if (wantsWrite && !from.preopen.writable) return errno.rofs
        if (held >= options.maxOpenFiles) return errno.mfile
        const { O_CREAT, O_DIRECTORY, O_EXCL, O_NOFOLLOW, O_NONBLOCK, O_RDONLY, O_RDWR } = fs.constants
        // O_NONBLOCK: opening a FIFO must not wait for its other end. O_TRUNC waits for the checks below.
        let flags = O_NOFOLLOW | O_NONBLOCK | (wantsWrite ? O_RDWR : O_RDONLY)
        if (open & oflags.creat) flags |= O_CREAT
        if (open & oflags.excl) flags |= O_EXCL
        if (open & oflags.directory) flags |= O_DIRECTORY
        const opened = walkBeneath(from, readString(pathPtr, pathLen), true, (parentFd, name, components) => {
          const hostFd = fs.openSync(pathAt(parentFd, name), flags, 0o644)
          try {
            const stats = fs.fstatSync(hostFd)
            if (!stats.isFile() && !stats.isDirectory())
              throw new SandboxRefusal(errno.notsup, `${name} is not a regular file or a directory`)
            verifyInside(hostFd, from.preopen)
            if (stats.isFile() && open & oflags.trunc) fs.ftruncateSync(hostFd, 0)
            return { hostFd, isDirectory: stats.isDirectory(), components: [...components, name] }
          } catch (error) {
            fs.closeSync(hostFd)
            throw error
          }
        })
        if (opened.isDirectory) {
          const dir: SandboxDir = {
            fd: opened.hostFd,
            preopen: from.preopen,
            root: from.root ?? from,
            components: opened.components.filter((name) => name !== '.'),
          }
          table.set(nextFd, {
            kind: 'dir',
            dir,
            fd: opened.hostFd,
            position: 0n,
            writable: from.preopen.writable,
            append: false,
          })
        } else {
          table.set(nextFd, {
            kind: 'file',
            fd: opened.hostFd,
            position: 0n,
            writable: wantsWrite,
            append: (fdflags & fdflagsAppend) !== 0,
          })
        }
        held++
        view().setUint32(resultPtr, nextFd, true)
        nextFd++
      },
    ),
    path_filestat_get: sys((fd: number, flags: number, pathPtr: number, pathLen: number, ptr: number) => {
      const follow = (flags & lookupSymlinkFollow) !== 0
      const stats = walkBeneath(dirEntry(fd), readString(pathPtr, pathLen), follow, (parentFd, name) => {
        const found = fs.lstatSync(pathAt(parentFd, name))
        // The walk follows a symlink it is told is one, as it would after an O_NOFOLLOW open.
        if (follow && found.isSymbolicLink()) throw Object.assign(new Error('symlink'), { code: 'ELOOP' })
        return found
      })
      writeFilestat(ptr, stats)
    }),
    path_create_directory: sys((fd: number, pathPtr: number, pathLen: number) => {
      const dir = dirEntry(fd)
      if (!dir.preopen.writable) return errno.rofs
      walkBeneath(dir, readString(pathPtr, pathLen), false, (parentFd, name) =>
        fs.mkdirSync(pathAt(parentFd, name)),
      )
    }),
    path_unlink_file: sys((fd: number, pathPtr: number, pathLen: number) => {
      const dir = dirEntry(fd)
      if (!dir.preopen.writable) return errno.rofs
      walkBeneath(dir, readString(pathPtr, pathLen), false, (parentFd, name) =>
        fs.unlinkSync(pathAt(parentFd, name)),
      )
    }),
    path_remove_directory: sys((fd: number, pathPtr: number, pathLen: number) => {
      const dir = dirEntry(fd)
      if (!dir.preopen.writable) return errno.rofs
      walkBeneath(dir, readString(pathPtr, pathLen), false, (parentFd, name) =>
        fs.rmdirSync(pathAt(parentFd, name)),
      )
    }),
    path_rename: sys(
      (fd: number, fromPtr: number, fromLen: number, toFd: number, toPtr: number, toLen: number) => {
        const from = dirEntry(fd)
        const to = dirEntry(toFd)
        if (!from.preopen.writable || !to.preopen.writable) return errno.rofs
        const toPath = readString(toPtr, toLen)
        walkBeneath(from, readString(fromPtr, fromLen), false, (fromParent, fromName) =>
          walkBeneath(to, toPath, false, (toParent, toName) =>
            fs.renameSync(pathAt(fromParent, fromName), pathAt(toParent, toName)),
          ),
        )
      },
    ),
  }
  for (const name of wasiFunctionNames) imports[name] ??= nosys
  return imports
}
