/**
 * The Extism kernel's own memory: a byte buffer apart from the guest's linear memory, with an
 * allocator that hands out handles. A handle is the offset of a block in this memory; `0` is never a
 * handle and means "none" or "failed".
 */

/** Offset of the first block: everything below it is never handed out, so `0` stays "none". */
const firstOffset = 8
/** Block sizes are rounded up to this, which keeps `u64` stores inside a block aligned. */
const blockAlign = 8
const initialBytes = 64 * 1024
/** After a call that left the buffer larger than this, {@link KernelMemory.reset} starts afresh. */
const keepBytes = 1024 * 1024

/** A kernel memory's state, as {@link KernelMemory.snapshot} takes it; `used` is `-1` for a freed block. */
export interface KernelMemorySnapshot {
  bytes: Uint8Array
  blocks: Array<[offset: number, capacity: number, used: number]>
}

/**
 * A bump allocator over a growable buffer that reuses freed blocks once it reaches its cap. Everything is
 * dropped at {@link KernelMemory.reset}, which the kernel does before every call, so the memory of a
 * long-lived instance does not grow with the number of calls.
 *
 * Loads outside the allocated region return `0` and stores there are ignored, as the Extism kernel
 * does with bounds checking on: a guest can never reach past its kernel memory.
 */
export class KernelMemory {
  #bytes: Uint8Array = new Uint8Array(initialBytes)
  #view = new DataView(this.#bytes.buffer)
  /** End of the highest block: offsets at or above it are out of range. */
  #end = firstOffset
  readonly #maxBytes: number
  /** Live blocks: offset → bytes in use. */
  readonly #used = new Map<number, number>()
  /** Every block made since the last reset: offset → capacity. */
  readonly #capacity = new Map<number, number>()
  /** Freed blocks by capacity, for reuse at the cap. */
  readonly #freed = new Map<number, number[]>()

  /** @param maxBytes the most this memory may grow to; allocations past it fail with `0`. */
  constructor(maxBytes: number) {
    this.#maxBytes = Math.max(maxBytes, initialBytes)
  }

  /** Bytes the buffer holds now (what this kernel costs in memory). */
  get byteLength(): number {
    return this.#bytes.byteLength
  }

  /** A handle to `size` bytes, or `0` when `size` is 0 or the memory cap would be passed. */
  alloc(size: number): number {
    if (!Number.isSafeInteger(size) || size <= 0 || size > this.#maxBytes) return 0
    const capacity = Math.ceil(size / blockAlign) * blockAlign
    const offset = this.#end
    if (offset + capacity > this.#bytes.byteLength && !this.#grow(offset + capacity)) return this.#reuse(size)
    this.#end = offset + capacity
    this.#used.set(offset, size)
    this.#capacity.set(offset, capacity)
    return offset
  }

  /**
   * A freed block of at least `size` bytes, for when the cap is reached; `0` when there is none.
   * Reusing only then, as Extism's kernel does, keeps a handle the guest freed from coming back as
   * a new one at once: PDKs that free what a host function already consumed stay harmless.
   */
  #reuse(size: number): number {
    let best: number | undefined
    for (const [capacity, handles] of this.#freed) {
      if (capacity >= size && handles.length > 0 && (best === undefined || capacity < best)) best = capacity
    }
    const handle = best === undefined ? undefined : this.#freed.get(best)?.pop()
    if (handle === undefined) return 0
    this.#used.set(handle, size)
    return handle
  }

  /** Frees a block; anything that is not a live block is ignored. */
  free(handle: number): void {
    if (!this.#used.delete(handle)) return
    const capacity = this.#capacity.get(handle) as number
    const list = this.#freed.get(capacity)
    if (list === undefined) this.#freed.set(capacity, [handle])
    else list.push(handle)
  }

  /** The length of a live block, `0` for anything else. */
  length(handle: number): number {
    return this.#used.get(handle) ?? 0
  }

  /** Whether `[offset, offset + size)` lies inside allocated memory. */
  inRange(offset: number, size: number): boolean {
    return offset >= firstOffset && offset + size <= this.#end
  }

  loadU8(offset: number): number {
    return this.inRange(offset, 1) ? (this.#bytes[offset] as number) : 0
  }

  loadU64(offset: number): bigint {
    return this.inRange(offset, 8) ? this.#view.getBigUint64(offset, true) : 0n
  }

  storeU8(offset: number, value: number): void {
    if (this.inRange(offset, 1)) this.#bytes[offset] = value
  }

  storeU64(offset: number, value: bigint): void {
    if (this.inRange(offset, 8)) this.#view.setBigUint64(offset, value, true)
  }

  /** Copies `bytes` into a new block; its handle, or `0` when the memory cap would be passed. */
  write(bytes: Uint8Array): number {
    const handle = this.alloc(bytes.byteLength)
    if (handle !== 0) this.#bytes.set(bytes, handle)
    return handle
  }

  /** A view of a live block's bytes (valid until the next allocation), or `undefined`. */
  block(handle: number): Uint8Array | undefined {
    const length = this.#used.get(handle)
    return length === undefined ? undefined : this.#bytes.subarray(handle, handle + length)
  }

  /** A view of `[offset, offset + length)`, or `undefined` when that is not all allocated memory. */
  range(offset: number, length: number): Uint8Array | undefined {
    if (length === 0) return new Uint8Array(0)
    return this.inRange(offset, length) ? this.#bytes.subarray(offset, offset + length) : undefined
  }

  /** Drops every block. Handles from before are invalid afterwards. */
  reset(): void {
    this.#end = firstOffset
    this.#used.clear()
    this.#capacity.clear()
    this.#freed.clear()
    if (this.#bytes.byteLength > keepBytes) this.#replace(new Uint8Array(initialBytes))
  }

  /**
   * The whole state of this memory: its bytes up to the last block, and every block made since the
   * last reset (live or freed). A user host function runs on the host's thread against a memory
   * {@link KernelMemory.restore}d from it, and its changes come back the same way.
   */
  snapshot(): KernelMemorySnapshot {
    const blocks: Array<[offset: number, capacity: number, used: number]> = []
    for (const [offset, capacity] of this.#capacity)
      blocks.push([offset, capacity, this.#used.get(offset) ?? -1])
    return { bytes: this.#bytes.slice(0, this.#end), blocks }
  }

  /** Replaces this memory's state with `snapshot` (see {@link KernelMemory.snapshot}). */
  restore(snapshot: KernelMemorySnapshot): void {
    this.reset()
    const end = Math.max(firstOffset, snapshot.bytes.byteLength)
    if (end > this.#bytes.byteLength && !this.#grow(end)) {
      throw new RangeError(`a kernel memory of ${end} bytes is above its cap of ${this.#maxBytes}`)
    }
    this.#bytes.set(snapshot.bytes)
    this.#end = end
    for (const [offset, capacity, used] of snapshot.blocks) {
      this.#capacity.set(offset, capacity)
      if (used >= 0) this.#used.set(offset, used)
      else {
        const list = this.#freed.get(capacity)
        if (list === undefined) this.#freed.set(capacity, [offset])
        else list.push(offset)
      }
    }
  }

  #grow(needed: number): boolean {
    if (needed > this.#maxBytes) return false
    const size = Math.min(this.#maxBytes, Math.max(needed, this.#bytes.byteLength * 2))
    let bytes: Uint8Array
    try {
      bytes = new Uint8Array(size)
    } catch {
      // The process itself is out of memory: fail this allocation, not the host.
      return false
    }
    bytes.set(this.#bytes.subarray(0, this.#end))
    this.#replace(bytes)
    return true
  }

  #replace(bytes: Uint8Array): void {
    this.#bytes = bytes
    this.#view = new DataView(bytes.buffer)
  }
}
