import * as fs from 'node:fs'

/**
 * The host file descriptors one instance holds, in shared memory so that the host can release
 * them. A worker thread's descriptors belong to the whole process and outlive the thread, and a
 * worker terminated mid-call runs none of its own cleanup: so the worker records every descriptor
 * it opens here, and the host closes whatever is recorded once the worker has exited.
 *
 * Opening a descriptor and recording it must not be split by a termination, or the descriptor
 * leaks; closing one and forgetting it likewise, or the host later closes a number the process
 * has reused. So each runs under a lock word the host takes before it terminates the worker:
 * `idle` → `busy` (the worker, for one open or close) → `idle`, or `idle` → `sealed` (the host,
 * which then terminates). A sealed worker opens and closes nothing more.
 */
const lockState = { idle: 0, busy: 1, sealed: 2 } as const
const free = -1

/** Shared memory for a table of `capacity` descriptors: one lock word, then the slots. */
export function createDescriptorBuffer(capacity: number): SharedArrayBuffer {
  const buffer = new SharedArrayBuffer(4 * (1 + capacity))
  new Int32Array(buffer).fill(free, 1)
  return buffer
}

/** The worker's side: opens and closes descriptors, recording each in the shared table. */
export class DescriptorTable {
  readonly #words: Int32Array

  constructor(buffer: SharedArrayBuffer) {
    this.#words = new Int32Array(buffer)
  }

  /**
   * `fs.openSync`, recorded. Throws Node's error if the open fails, and `EMFILE` when the table is
   * full (callers keep their own, smaller limit; this one only bounds the table).
   */
  open(file: string, flags: number, mode?: number): number {
    return this.#locked(() => {
      const slot = this.#words.indexOf(free, 1)
      if (slot < 0) throw Object.assign(new Error('descriptor table full'), { code: 'EMFILE' })
      const fd = fs.openSync(file, flags, mode)
      this.#words[slot] = fd
      return fd
    })
  }

  /** Forgets `fd` and closes it. */
  close(fd: number): void {
    this.#locked(() => {
      const slot = this.#words.indexOf(fd, 1)
      if (slot < 0) return
      this.#words[slot] = free
      fs.closeSync(fd)
    })
  }

  #locked<T>(body: () => T): T {
    const words = this.#words
    while (Atomics.compareExchange(words, 0, lockState.idle, lockState.busy) !== lockState.idle) {
      // Sealed: the host is terminating this worker; it must not open or close anything more.
      Atomics.wait(words, 0, lockState.sealed)
    }
    try {
      return body()
    } finally {
      Atomics.store(words, 0, lockState.idle)
      Atomics.notify(words, 0)
    }
  }
}

/**
 * The host's side, before it terminates the worker: waits out an open or close under way (one
 * non-blocking system call), then seals the table so the worker starts no other.
 */
export async function sealDescriptors(buffer: SharedArrayBuffer): Promise<void> {
  const words = new Int32Array(buffer)
  for (;;) {
    const was = Atomics.compareExchange(words, 0, lockState.idle, lockState.sealed)
    if (was !== lockState.busy) return
    const wait = Atomics.waitAsync(words, 0, lockState.busy)
    if (wait.async) await wait.value
  }
}

/**
 * The host's side, once the worker has exited: closes every descriptor it left recorded. Only
 * after the exit, since a live worker could still read or write a number the host would free for
 * reuse.
 */
export function closeDescriptors(buffer: SharedArrayBuffer): void {
  const words = new Int32Array(buffer)
  for (let slot = 1; slot < words.length; slot++) {
    const fd = words[slot] as number
    if (fd === free) continue
    words[slot] = free
    try {
      fs.closeSync(fd)
    } catch {
      // Already closed: nothing else can own it, the slot was this worker's.
    }
  }
}
