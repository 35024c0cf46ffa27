/**
 * The host ↔ instance-worker channel: one SharedArrayBuffer per worker, no postMessage per call.
 *
 * The two sides take turns on one word. The host writes a message and hands the turn to the
 * worker (`Atomics.notify`); the worker, blocked in `Atomics.wait`, reads it, runs the guest and
 * hands the turn back with its answer, which the host awaits with `Atomics.waitAsync` so its event
 * loop keeps running. A guest's `host_call` is one more exchange inside a call: the worker sends
 * the request and blocks until the host, having done the async work, writes the response.
 *
 * A message longer than the data area travels in chunks: the sender writes a chunk and hands over
 * the turn; the receiver copies it and answers `continue`; and so on until `total` bytes are across.
 */

/** Byte size of the control words at the start of the buffer. */
const controlBytes = 32
/** Default size of the data area: ample for typical JSON; larger messages are chunked. */
export const defaultChannelBytes = 256 * 1024

const slot = { turn: 0, kind: 1, total: 2, chunk: 3, aux: 4, flags: 5 } as const
const turn = { host: 0, worker: 1 } as const

/** Message kinds. */
export const MessageKind = {
  /** host → worker: call export `fn`; payload = fn name then input, `aux` = fn name byte length. */
  call: 1,
  /** host → worker: the response to a host call; payload = `{"ok"|"error"}` JSON. */
  hostResult: 2,
  /** worker → host: the call succeeded; payload = the output. */
  result: 3,
  /** worker → host: the call failed; payload = PluginErrorData JSON, `flags` 1 = discard the instance. */
  failure: 4,
  /** worker → host: a host call; payload = method then args JSON, `aux` = method byte length. */
  hostCall: 5,
  /** either way: the chunk arrived, send the next one. */
  continue: 6,
} as const

export type MessageKindValue = (typeof MessageKind)[keyof typeof MessageKind]

/** One received message. `payload` may be a view of the shared buffer, valid until the turn passes. */
export interface ChannelMessage {
  kind: number
  aux: number
  flags: number
  payload: Uint8Array
}

/** Allocates the shared buffer of one channel. */
export function createChannelBuffer(dataBytes = defaultChannelBytes): SharedArrayBuffer {
  return new SharedArrayBuffer(controlBytes + dataBytes)
}

class ChannelEnd {
  protected readonly control: Int32Array
  protected readonly data: Uint8Array

  constructor(
    buffer: SharedArrayBuffer,
    protected readonly self: number,
    protected readonly peer: number,
  ) {
    this.control = new Int32Array(buffer, 0, controlBytes / 4)
    this.data = new Uint8Array(buffer, controlBytes)
  }

  /** Writes one chunk of a message and hands the turn to the peer. */
  protected post(
    kind: number,
    aux: number,
    flags: number,
    total: number,
    chunk: Uint8Array | undefined,
  ): void {
    const c = this.control
    if (chunk !== undefined) this.data.set(chunk)
    c[slot.kind] = kind
    c[slot.aux] = aux
    c[slot.flags] = flags
    c[slot.total] = total
    c[slot.chunk] = chunk === undefined ? total : chunk.length
    Atomics.store(c, slot.turn, this.peer)
    Atomics.notify(c, slot.turn)
  }

  /** Reads the message the peer has just handed over; chunked ones start a copy of `total` bytes. */
  protected read(): { message: ChannelMessage; remaining: number } {
    const c = this.control
    const total = c[slot.total] ?? 0
    const chunk = c[slot.chunk] ?? 0
    const message: ChannelMessage = {
      kind: c[slot.kind] ?? 0,
      aux: c[slot.aux] ?? 0,
      flags: c[slot.flags] ?? 0,
      payload: this.data.subarray(0, chunk),
    }
    if (chunk === total) return { message, remaining: 0 }
    const whole = new Uint8Array(total)
    whole.set(message.payload)
    message.payload = whole
    return { message, remaining: total - chunk }
  }

  /** Copies the chunk just handed over into a chunked message at `offset`. */
  protected readChunk(message: ChannelMessage, offset: number): number {
    const chunk = this.control[slot.chunk] ?? 0
    message.payload.set(this.data.subarray(0, chunk), offset)
    return chunk
  }

  /** The data area, for writing a message in place before {@link ChannelEnd.post}. */
  get area(): Uint8Array {
    return this.data
  }
}

/**
 * The worker's end: every operation blocks the worker thread, which is what makes a host call
 * synchronous for the guest.
 */
export class WorkerChannelEnd extends ChannelEnd {
  constructor(buffer: SharedArrayBuffer) {
    super(buffer, turn.worker, turn.host)
  }

  #waitForTurn(): void {
    Atomics.wait(this.control, slot.turn, turn.host)
  }

  /** Blocks until the host hands over a message, and reads all of it. */
  receive(): ChannelMessage {
    this.#waitForTurn()
    const { message, remaining } = this.read()
    let offset = message.payload.length - remaining
    while (offset < message.payload.length) {
      this.post(MessageKind.continue, 0, 0, 0, undefined)
      this.#waitForTurn()
      offset += this.readChunk(message, offset)
    }
    return message
  }

  /** Sends a message, chunked if it must be, and returns once the host holds the turn. */
  send(kind: number, aux: number, flags: number, payload: Uint8Array): void {
    const size = this.data.length
    for (let offset = 0; ; offset += size) {
      const last = offset + size >= payload.length
      this.post(kind, aux, flags, payload.length, payload.subarray(offset, offset + size))
      if (last) return
      this.#waitForTurn() // the host's `continue`
    }
  }
}

/** The host's end: waits without blocking the event loop. */
export class HostChannelEnd extends ChannelEnd {
  constructor(buffer: SharedArrayBuffer) {
    super(buffer, turn.host, turn.worker)
  }

  /** Resolves when the worker hands the turn back (or someone calls {@link HostChannelEnd.wake}). */
  #waitForTurn(): Promise<unknown> | undefined {
    const wait = Atomics.waitAsync(this.control, slot.turn, turn.worker)
    return wait.async ? wait.value : undefined
  }

  /** Whether the worker holds the turn. */
  get workerHasTurn(): boolean {
    return Atomics.load(this.control, slot.turn) === turn.worker
  }

  /**
   * Hands the worker a message of `length` bytes already written into {@link ChannelEnd.area}
   * (the fast path: the caller encoded straight into shared memory).
   */
  postInPlace(kind: number, aux: number, length: number): void {
    this.control[slot.chunk] = length
    this.control[slot.kind] = kind
    this.control[slot.aux] = aux
    this.control[slot.flags] = 0
    this.control[slot.total] = length
    Atomics.store(this.control, slot.turn, turn.worker)
    Atomics.notify(this.control, slot.turn)
  }

  /** Sends a message, chunked if it must be. */
  async send(kind: number, aux: number, payload: Uint8Array): Promise<void> {
    const size = this.data.length
    for (let offset = 0; ; offset += size) {
      const last = offset + size >= payload.length
      this.post(kind, aux, 0, payload.length, payload.subarray(offset, offset + size))
      if (last) return
      await this.#waitForTurn() // the worker's `continue`
      if (this.workerHasTurn) throw new Error('channel closed')
    }
  }

  /**
   * Waits for the worker's next message and reads all of it. Resolves `undefined` when woken
   * while the worker still holds the turn (the worker was stopped).
   */
  async receive(): Promise<ChannelMessage | undefined> {
    await this.#waitForTurn()
    if (this.workerHasTurn) return undefined
    const { message, remaining } = this.read()
    let offset = message.payload.length - remaining
    while (offset < message.payload.length) {
      this.post(MessageKind.continue, 0, 0, 0, undefined)
      await this.#waitForTurn()
      if (this.workerHasTurn) return undefined
      offset += this.readChunk(message, offset)
    }
    return message
  }

  /** Wakes a pending {@link HostChannelEnd.receive} after the worker was terminated. */
  wake(): void {
    Atomics.notify(this.control, slot.turn)
  }
}
