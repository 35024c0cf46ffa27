import { createHash } from 'node:crypto'
import { type BigIntStats, constants, readlinkSync, realpathSync, statSync } from 'node:fs'
import { type FileHandle, open } from 'node:fs/promises'
import path from 'node:path'
import { isInsideFolder } from '@corral/manifest'
import { PluginError } from '@corral/types'

/** A module's bytes and their SHA-256 (hex), which {@link ModuleCache} keys compiled modules by. */
export interface ModuleBytes {
  bytes: Uint8Array
  digest: string
}

/** Hashes `bytes` for {@link ModuleCache}. */
export function moduleBytes(bytes: Uint8Array): ModuleBytes {
  return { bytes, digest: createHash('sha256').update(bytes).digest('hex') }
}

/**
 * How recently a file may have changed and still have its read kept. A file's times move by the
 * kernel's clock tick, not by the nanosecond: a write in the same tick as the read, keeping the
 * size, would leave its stat as it was (git's "racy" entries). A file older than this cannot have
 * been written unseen since it was read.
 */
const settledMs = 2_000

interface ReadFile {
  /** The stat fields that change when the file is replaced or written. */
  identity: string
  module: ModuleBytes
}

/**
 * Reads plugins' module files, and keeps each one's bytes and digest while its stat stays the same:
 * loading a plugin again (a reload, a restart of the host's plugin set) then costs one `stat`
 * instead of resolving the path, reading and hashing the file. Bounded: the oldest entry goes when
 * it is full.
 *
 * A new read opens the file and checks where the opened file is; the bytes and the identity kept
 * are that open file's. A kept read is checked by the identity of the file the path leads to now,
 * not by resolving it again: a path swapped to lead elsewhere leads to another file (another
 * identity), which is then opened and checked as on a first read. The one file with the same
 * identity is the same file, whose bytes were read from inside the folder.
 */
export class ModuleFiles {
  readonly #files = new Map<string, ReadFile>()
  readonly #capacity: number
  readonly #now: () => number

  /** `now`: the wall clock file times are compared with (tests pass a later one). */
  constructor(capacity = 64, now: () => number = Date.now) {
    this.#capacity = capacity
    this.#now = now
  }

  /**
   * The module at `file` in the plugin folder `dir`. Fails with `load_failed` when there is none,
   * or when it resolves (through symbolic links) outside `dir`.
   */
  async read(dir: string, file: string, plugin: string): Promise<ModuleBytes> {
    // Metadata calls on a local file take less than a round trip through libuv's thread pool
    // (bench row `wasm.load.cached`), so they are made in place. A kept read costs one stat (of the
    // file `target` leads to); resolving a path costs calls per component, so only a new read does.
    const target = path.resolve(dir, file)
    const known = this.#files.get(target)
    if (known !== undefined && known.identity === currentIdentity(target)) return known.module
    let root: string
    let handle: FileHandle
    try {
      root = realpathSync.native(dir)
      // Non-blocking: a FIFO in the module's place must not hold the load up (it is refused below).
      handle = await open(target, constants.O_RDONLY | constants.O_NONBLOCK)
    } catch {
      throw new PluginError('load_failed', `no module at ${file} (was the plugin built?)`, { plugin })
    }
    let module: ModuleBytes
    let stats: BigIntStats
    try {
      // Where the file opened is, as the kernel has it: a path checked before the open could be
      // swapped between the check and the open (a symbolic link in the folder, renamed).
      if (!isInsideFolder(root, readlinkSync(`/proc/self/fd/${handle.fd}`))) {
        throw new PluginError('load_failed', `the module ${file} is outside the plugin's folder`, { plugin })
      }
      stats = await handle.stat({ bigint: true })
      if (!stats.isFile())
        throw new PluginError('load_failed', `the module ${file} is not a file`, { plugin })
      module = moduleBytes(new Uint8Array(await handle.readFile()))
    } finally {
      await handle.close()
    }
    this.#files.delete(target)
    if (this.#now() - Number(stats.ctimeMs) > settledMs) {
      this.#files.set(target, { identity: identityOf(stats), module })
      if (this.#files.size > this.#capacity) this.#files.delete(this.#files.keys().next().value as string)
    }
    return module
  }

  /** Drops every entry. */
  clear(): void {
    this.#files.clear()
  }
}

/** The stat fields that change when a file is replaced or written. */
function identityOf({ dev, ino, size, mtimeNs, ctimeNs }: BigIntStats): string {
  return `${dev}:${ino}:${size}:${mtimeNs}:${ctimeNs}`
}

/** The identity of the file `file` leads to now; undefined when it leads to none (the full read says why). */
function currentIdentity(file: string): string | undefined {
  try {
    return identityOf(statSync(file, { bigint: true }))
  } catch {
    return undefined
  }
}
