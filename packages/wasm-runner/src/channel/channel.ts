/**
 * The host ↔ worker channel: one SharedArrayBuffer per worker, no postMessage per call.
 *
 * The two sides take turns on one word. The host writes a message and hands the turn to the
 * worker (`Atomics.notify`); the worker, blocked in `Atomics.wait`, reads it, runs the guest and
 * hands the turn back with its answer, which the host awaits with `Atomics.waitAsync` so its event
 * loop keeps running. A guest's `host_call` is one more exchange inside a call: the worker sends
 * the request and blocks until the host, having done the async work, writes the response.
 *
 * A message longer than the data area travels in chunks: the sender writes a chunk and hands over
 * the turn; the receiver copies it and answers `continue`; and so on until `total` bytes are across.
 *
 * A side that waits for the turn says so first, and the other side calls `Atomics.notify` (which
 * takes a process-wide lock) only when it does. Both use sequentially consistent atomics — store
 * the turn, then read the flag; set the flag, then wait on the turn — so a hand-over is never
 * missed; a late notify, waking a side that is not yet due, only makes it wait again.
 *
 * Pipelining: while the worker runs a call, the host may leave the next one in a mailbox beside
 * the data area. The worker takes it as soon as it has sent its result (no sleeping, no waiting for
 * the host), then waits for the host's `ack`, which the host sends once it has read that result,
 * before it sends anything of the next call. The host can take a queued call back as long as the
 * worker has not taken it (one compare-and-swap decides). Every call has a sequence number, and a
 * queued call names the one it follows: the worker takes it only right after that one, so a call
 * the host sent through the turn meanwhile is never overtaken.
 */

/** Byte size of the control words at the start of the buffer. */
const controlBytes = 64
/** Default size of the data area: ample for typical JSON; larger messages are chunked. */
export const defaultChannelBytes = 256 * 1024
/** Default size of the mailbox: a call that does not fit is not pipelined. */
export const defaultMailboxBytes = 16 * 1024

const slot = {
  turn: 0,
  kind: 1,
  total: 2,
  chunk: 3,
  aux: 4,
  flags: 5,
  /** The sequence number of the call sent through the turn. */
  seq: 6,
  /** Mailbox word: state in the low two bits, a generation above (against ABA between claim and take-back). */
  mailbox: 7,
  mailboxAux: 8,
  mailboxLength: 9,
  mailboxSeq: 10,
  /** The sequence number of the call the queued one must follow. */
  mailboxAfter: 11,
  /** 1 while a side waits for the turn: the other notifies (a costly call) only then. */
  workerWaiting: 12,
  hostWaiting: 13,
} as const
const turn = { host: 0, worker: 1 } as const
/** Mailbox states: the host writes only into an empty one; posted → taken is the worker's claim. */
const mailbox = { empty: 0, posted: 1, taken: 2, stateMask: 3 } as const

const encoder = new TextEncoder()
const decoder = new TextDecoder()

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
  /** host → worker: the previous call's result is read; the turn is the worker's for the queued call. */
  ack: 7,
} as const

export type MessageKindValue = (typeof MessageKind)[keyof typeof MessageKind]

/** One received message. `payload` may be a view of the shared buffer, valid until the turn passes. */
export interface ChannelMessage {
  kind: number
  aux: number
  flags: number
  payload: Uint8Array
}

/** A call as the worker runs it: the export's name, its input, and its sequence number. */
export interface ChannelCall {
  fn: string
  input: Uint8Array
  seq: number
}

/** The sizes a channel buffer was made with, from its byte length. */
function layout(buffer: SharedArrayBuffer): { dataBytes: number; mailboxBytes: number } {
  const mailboxBytes = defaultMailboxBytes
  return { dataBytes: buffer.byteLength - controlBytes - mailboxBytes, mailboxBytes }
}

/** Allocates the shared buffer of one channel. */
export function createChannelBuffer(dataBytes = defaultChannelBytes): SharedArrayBuffer {
  return new SharedArrayBuffer(controlBytes + dataBytes + defaultMailboxBytes)
}

class ChannelEnd {
  protected readonly control: Int32Array
  protected readonly data: Uint8Array
  protected readonly mailboxArea: Uint8Array

  constructor(
    buffer: SharedArrayBuffer,
    protected readonly self: number,
    protected readonly peer: number,
  ) {
    const { dataBytes, mailboxBytes } = layout(buffer)
    this.control = new Int32Array(buffer, 0, controlBytes / 4)
    this.data = new Uint8Array(buffer, controlBytes, dataBytes)
    this.mailboxArea = new Uint8Array(buffer, controlBytes + dataBytes, mailboxBytes)
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
    this.handOver()
  }

  /** Gives the turn to the peer, and wakes it if it is waiting for it. */
  protected handOver(): void {
    const c = this.control
    Atomics.store(c, slot.turn, this.peer)
    if (Atomics.load(c, this.peer === turn.worker ? slot.workerWaiting : slot.hostWaiting) === 1) {
      Atomics.notify(c, slot.turn)
    }
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
  /** Set when the worker took a queued call before the host handed back the turn (its `ack` is due). */
  #ackDue = false

  constructor(buffer: SharedArrayBuffer) {
    super(buffer, turn.worker, turn.host)
  }

  /** The call the host sent through the turn, from the message just received. */
  callFrom(message: ChannelMessage): ChannelCall {
    return {
      fn: decoder.decode(message.payload.subarray(0, message.aux)),
      // A copy: the guest may make a host call (which reuses the channel) before it reads its input.
      input: message.payload.slice(message.aux),
      seq: this.control[slot.seq] ?? 0,
    }
  }

  /**
   * Claims the call the host queued in the mailbox, if there is one and it follows call `lastSeq`.
   * `holdingTurn` says whether the worker holds the turn (it just received the `ack`); if not, the
   * `ack` is awaited before the worker sends anything.
   */
  takeQueued(lastSeq: number, holdingTurn: boolean): ChannelCall | undefined {
    const c = this.control
    const word = Atomics.load(c, slot.mailbox)
    if ((word & mailbox.stateMask) !== mailbox.posted || Atomics.load(c, slot.mailboxAfter) !== lastSeq)
      return undefined
    const generation = word & ~mailbox.stateMask
    if (Atomics.compareExchange(c, slot.mailbox, word, generation | mailbox.taken) !== word) return undefined
    const aux = c[slot.mailboxAux] ?? 0
    const call = {
      fn: decoder.decode(this.mailboxArea.subarray(0, aux)),
      input: this.mailboxArea.slice(aux, c[slot.mailboxLength] ?? 0),
      seq: c[slot.mailboxSeq] ?? 0,
    }
    Atomics.store(c, slot.mailbox, generation | mailbox.empty)
    this.#ackDue = !holdingTurn
    return call
  }

  /** Waits for the `ack` that hands back the turn, if one is due. */
  #settleTurn(): void {
    if (!this.#ackDue) return
    this.#ackDue = false
    this.#waitForTurn()
    const kind = this.control[slot.kind]
    if (kind !== MessageKind.ack) throw new Error(`channel: expected ack, got message ${kind}`)
  }

  /** Blocks until the host hands over the turn. A wake-up without it (a late notify) waits again. */
  #waitForTurn(): void {
    const c = this.control
    if (Atomics.load(c, slot.turn) !== turn.host) return
    Atomics.store(c, slot.workerWaiting, 1)
    while (Atomics.load(c, slot.turn) === turn.host) Atomics.wait(c, slot.turn, turn.host)
    Atomics.store(c, slot.workerWaiting, 0)
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
    this.#settleTurn()
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

  #stopped = false

  /**
   * Waits for the worker to hand the turn back; false when the channel was stopped first
   * ({@link HostChannelEnd.wake}). A wake-up without the turn (the notify of an earlier message,
   * arriving late) waits again.
   */
  async #turnBack(): Promise<boolean> {
    const c = this.control
    while (this.workerHasTurn) {
      if (this.#stopped) return false
      Atomics.store(c, slot.hostWaiting, 1)
      const wait = Atomics.waitAsync(c, slot.turn, turn.worker)
      if (wait.async) await wait.value
      Atomics.store(c, slot.hostWaiting, 0)
    }
    return true
  }

  /** Whether the worker holds the turn. */
  get workerHasTurn(): boolean {
    return Atomics.load(this.control, slot.turn) === turn.worker
  }

  /** Hands the worker a message of UTF-8 text, encoded straight into shared memory; false if it does not fit. */
  postText(kind: number, text: string): boolean {
    const { read, written } = encoder.encodeInto(text, this.data)
    if (read !== text.length) return false
    this.postInPlace(kind, 0, written)
    return true
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
    this.handOver()
  }

  /**
   * Queues call `seq` in the mailbox, to follow call `after` (the one running); false when the
   * mailbox is in use or the call does not fit (then it waits for the channel instead).
   */
  queue(fn: string, input: string | Uint8Array, seq: number, after: number): boolean {
    const c = this.control
    const word = Atomics.load(c, slot.mailbox)
    if ((word & mailbox.stateMask) !== mailbox.empty) return false
    const area = this.mailboxArea
    const name = encoder.encodeInto(fn, area)
    if (name.read !== fn.length) return false
    const written = writeInput(input, area.subarray(name.written))
    if (written === undefined) return false
    c[slot.mailboxAux] = name.written
    c[slot.mailboxLength] = name.written + written
    c[slot.mailboxSeq] = seq
    c[slot.mailboxAfter] = after
    Atomics.store(c, slot.mailbox, ((word & ~mailbox.stateMask) + 4) | mailbox.posted)
    return true
  }

  /** Takes back the queued call if the worker has not claimed it; true when it was taken back. */
  unqueue(): boolean {
    const c = this.control
    const word = Atomics.load(c, slot.mailbox)
    if ((word & mailbox.stateMask) !== mailbox.posted) return false
    return Atomics.compareExchange(c, slot.mailbox, word, word & ~mailbox.stateMask) === word
  }

  /** Sets the sequence number of the call about to be sent through the turn. */
  setCallSeq(seq: number): void {
    this.control[slot.seq] = seq
  }

  /** Hands the worker the turn for the call it took (or will take) from the mailbox. */
  ack(): void {
    this.post(MessageKind.ack, 0, 0, 0, undefined)
  }

  /** Marks the message in the channel as read, so that {@link HostChannelEnd.peekFinal} skips it. */
  markRead(): void {
    this.control[slot.kind] = 0
  }

  /**
   * The worker's final message, if it sits unread in the channel whole: lets the host keep the
   * result of a call that finished just as its instance is being stopped.
   */
  peekFinal(): ChannelMessage | undefined {
    const c = this.control
    if (Atomics.load(c, slot.turn) !== turn.host) return undefined
    const kind = c[slot.kind]
    if ((kind !== MessageKind.result && kind !== MessageKind.failure) || c[slot.chunk] !== c[slot.total])
      return undefined
    return {
      kind,
      aux: c[slot.aux] ?? 0,
      flags: c[slot.flags] ?? 0,
      payload: this.data.subarray(0, c[slot.total] ?? 0),
    }
  }

  /** Sends a message, chunked if it must be. */
  async send(kind: number, aux: number, payload: Uint8Array): Promise<void> {
    const size = this.data.length
    for (let offset = 0; ; offset += size) {
      const last = offset + size >= payload.length
      this.post(kind, aux, 0, payload.length, payload.subarray(offset, offset + size))
      if (last) return
      if (!(await this.#turnBack())) throw new Error('channel closed') // the worker's `continue`
    }
  }

  /**
   * Waits for the worker's next message and reads all of it. Resolves `undefined` when woken
   * while the worker still holds the turn (the worker was stopped).
   */
  async receive(): Promise<ChannelMessage | undefined> {
    if (!(await this.#turnBack())) return undefined
    const { message, remaining } = this.read()
    let offset = message.payload.length - remaining
    while (offset < message.payload.length) {
      this.post(MessageKind.continue, 0, 0, 0, undefined)
      if (!(await this.#turnBack())) return undefined
      offset += this.readChunk(message, offset)
    }
    return message
  }

  /** Stops the channel: a pending {@link HostChannelEnd.receive} resolves `undefined` (the worker was terminated). */
  wake(): void {
    this.#stopped = true
    Atomics.notify(this.control, slot.turn)
  }
}

/**
 * Writes a call's input into `area`: JSON text encoded straight in, bytes copied. Returns the bytes
 * written, or undefined when the input does not fit.
 */
export function writeInput(input: string | Uint8Array, area: Uint8Array): number | undefined {
  if (typeof input !== 'string') {
    if (input.length > area.length) return undefined
    area.set(input)
    return input.length
  }
  const { read, written } = encoder.encodeInto(input, area)
  return read === input.length ? written : undefined
}
