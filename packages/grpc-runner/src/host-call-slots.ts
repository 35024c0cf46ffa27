/** What {@link HostCallSlots} lets one plugin have. */
export interface HostCallLimits {
  /** Host calls running at once. */
  calls: number
  /** Bytes of arguments (and answers not yet sent) held by the host calls running at once (one larger call runs alone). */
  bytes: number
  /** Bytes of arguments started in one second (one larger call starts alone): what bounds the host's time spent parsing them. */
  bytesPerSecond: number
}

/** The second of {@link HostCallLimits.bytesPerSecond}, on the monotonic clock (the wall clock can step back). */
const windowMs = 1000

/**
 * The host calls of one plugin that run at once, whatever brought them (unary calls, any number of
 * call streams, any number of connections), within {@link HostCallLimits}. The rest wait their turn,
 * in order. A slot is freed when its host call has settled in the host API and its answer has left,
 * not when the stream or connection that brought it is gone: a plugin that cancels and opens again
 * gets no more, nor one that reads none of its answers.
 */
export class HostCallSlots {
  readonly #limits: HostCallLimits
  #running = 0
  #runningBytes = 0
  #windowStart = 0
  #windowBytes = 0
  #windowTimer: NodeJS.Timeout | undefined
  readonly #queue: Array<{ bytes: number; start(): void }> = []
  readonly #onFree = new Set<() => void>()

  constructor(limits: HostCallLimits) {
    this.#limits = limits
  }

  /** Whether a host call that came now would wait. */
  get full(): boolean {
    this.#turnWindow()
    const { calls, bytes, bytesPerSecond } = this.#limits
    return (
      this.#queue.length > 0 ||
      this.#running >= calls ||
      this.#runningBytes >= bytes ||
      this.#windowBytes >= bytesPerSecond
    )
  }

  /**
   * Runs `work`, a host call with `bytes` of arguments, once it has a slot. `work` may `hold` more
   * bytes (its answer, until it has left the host): they count until it settles.
   */
  async run<T>(bytes: number, work: (hold: (more: number) => void) => Promise<T>): Promise<T> {
    if (this.#queue.length > 0 || !this.#fits(bytes)) {
      await new Promise<void>((start) => {
        this.#queue.push({ bytes, start })
        this.#waitForWindow()
      })
    } else {
      this.#take(bytes)
    }
    let held = bytes
    try {
      return await work((more) => {
        held += more
        this.#runningBytes += more
      })
    } finally {
      this.#running--
      this.#runningBytes -= held
      this.#startWaiting()
    }
  }

  /** Calls `listener` whenever a slot may have freed; returns what stops it. */
  onFree(listener: () => void): () => void {
    this.#onFree.add(listener)
    return () => this.#onFree.delete(listener)
  }

  #fits(bytes: number): boolean {
    this.#turnWindow()
    const limits = this.#limits
    return (
      this.#running < limits.calls &&
      (this.#runningBytes === 0 || this.#runningBytes + bytes <= limits.bytes) &&
      (this.#windowBytes === 0 || this.#windowBytes + bytes <= limits.bytesPerSecond)
    )
  }

  #take(bytes: number): void {
    this.#running++
    this.#runningBytes += bytes
    this.#windowBytes += bytes
    this.#waitForWindow()
  }

  #turnWindow(): void {
    const now = performance.now()
    if (now - this.#windowStart < windowMs) return
    this.#windowStart = now
    this.#windowBytes = 0
  }

  /**
   * While calls wait, or the second's bytes are spent (streams stop reading), a timer starts the
   * waiting calls and wakes the streams when the next second's bytes are there.
   */
  #waitForWindow(): void {
    if (this.#windowTimer !== undefined) return
    if (this.#queue.length === 0 && this.#windowBytes < this.#limits.bytesPerSecond) return
    this.#windowTimer = setTimeout(
      () => {
        this.#windowTimer = undefined
        this.#startWaiting()
      },
      Math.max(0, this.#windowStart + windowMs - performance.now()),
    )
    this.#windowTimer.unref()
  }

  #startWaiting(): void {
    for (let next = this.#queue[0]; next !== undefined && this.#fits(next.bytes); next = this.#queue[0]) {
      this.#queue.shift()
      this.#take(next.bytes)
      next.start()
    }
    this.#waitForWindow()
    if (!this.full) for (const listener of this.#onFree) listener()
  }
}
