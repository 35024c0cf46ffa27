/**
 * The host ↔ worker channel: one SharedArrayBuffer per worker, no postMessage per call.
 *
 * Calls and results travel through two rings of fixed-size slots: the host writes calls into the
 * request ring, the worker runs them in order and writes each result into the result ring. Neither
 * side waits for the other between calls: the host may queue several calls behind the running one
 * (pipelining), and one wake of the host carries every result written since it last looked.
 *
 * What does not fit a slot, and a guest's host calls, go through the exchange area: one message at
 * a time, its `exchange` word saying whose message sits there (none, the host's, the worker's).
 * The reader of a message frees the area (or answers in it). A message longer than the area travels
 * in chunks, each answered `continue`. While the worker runs a call, the area is the worker's to
 * send in: the host writes there only in answer to the worker, or to send a call too large for a
 * slot, which it does only when no other call is in flight. A message in the exchange area is about
 * the oldest call whose result has not been read: the host takes the result ring's entries up to
 * that call first.
 *
 * Waking: each side waits on its own bell, a counter the other side bumps after publishing anything
 * for it, and calls `Atomics.notify` (which takes a process-wide lock) only when the waiter said it
 * sleeps for what was published; the waker clears that flag, so a wake-up costs one notify. Both
 * use sequentially consistent atomics — read the bell, set the flag, check for work, then wait on
 * the bell's value — so a publish is never missed. Within a burst of calls the worker spins briefly
 * before it sleeps: the host's next call then costs no wake-up. The host wakes the worker once for
 * the calls it queues in one turn behind others or among many at once (each wake-up may cost a
 * switch of the core to the worker, which would then take them one at a time).
 *
 * Taking back: a queued call's slot holds its state (posted, taken, revoked) with its sequence
 * number in one word; the host revokes a call the worker has not taken with one compare-and-swap,
 * and the worker skips a revoked slot.
 */

/** Slots per ring: the most calls an instance holds at once (running and queued). */
export const ringSlots = 16
/** Bytes per ring slot: a call or result that does not fit goes through the exchange area. */
export const slotBytes = 4 * 1024
/** Default size of the exchange area: ample for typical JSON; larger messages are chunked. */
export const defaultChannelBytes = 256 * 1024

/** Control words at the start of the buffer. */
const word = {
  /** Whose message sits in the exchange area: {@link owner}. */
  exchange: 0,
  kind: 1,
  total: 2,
  chunk: 3,
  aux: 4,
  flags: 5,
  /** The sequence number of the call a message in the exchange area is about. */
  seq: 6,
  /** Bumped by the host after it publishes anything for the worker; the worker sleeps on it. */
  workerBell: 7,
  /** Bumped by the worker after it publishes anything for the host; the host sleeps on it. */
  hostBell: 8,
  /** What a side sleeps on its bell for ({@link waitingFor}): the other notifies (a costly call) only then. */
  workerSleeps: 9,
  hostSleeps: 10,
  /** Calls written into the request ring, and calls the worker is done with (counters that wrap). */
  requestTail: 11,
  requestHead: 12,
  /** Results written into the result ring, and results the host has read. */
  resultTail: 13,
  resultHead: 14,
} as const
const controlWords = 16
/** Words of a slot's header: request = state, aux, length, flags; result = seq, kind, flags, length. */
const headerWords = 4
const owner = { none: 0, host: 1, worker: 2 } as const
/**
 * What a sleeping side waits for. A publish that cannot be it bumps the bell without a notify: a
 * wake-up for nothing would cost the notifier a system call and the sleeper a trip through the
 * scheduler.
 */
const waitingFor = { nothing: 0, call: 1, resultRoom: 2, exchange: 3, host: 4 } as const
/** A request slot's state, in the low two bits of its state word (the call's seq above them). */
const request = { posted: 1, taken: 2, revoked: 3, stateMask: 3, seqMask: 0x1fffffff } as const
/** A request slot flag: the call's bytes follow through the exchange area. */
const inExchange = 1
/** How long the worker spins for the next call of a burst before it sleeps (ms). */
const spinMs = 0.03

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
} as const

export type MessageKindValue = (typeof MessageKind)[keyof typeof MessageKind]

/** One received message. `payload` may be a view of the shared buffer, valid until it is marked read. */
export interface ChannelMessage {
  kind: number
  aux: number
  flags: number
  /** The sequence number of the call the message is about. */
  seq: number
  payload: Uint8Array
}

/** A call as the worker runs it: the export's name, its input, and its sequence number. */
export interface ChannelCall {
  fn: string
  /** A view of the request slot, valid until {@link WorkerChannelEnd.finish}. */
  input: Uint8Array
  seq: number
}

/** Allocates the shared buffer of one channel. */
export function createChannelBuffer(exchangeBytes = defaultChannelBytes): SharedArrayBuffer {
  return new SharedArrayBuffer(
    (controlWords + 2 * ringSlots * headerWords) * 4 + 2 * ringSlots * slotBytes + exchangeBytes,
  )
}

/** The next sequence number after `seq` (they wrap within the state word's bits). */
export function nextSeq(seq: number): number {
  return (seq + 1) & request.seqMask
}

class ChannelEnd {
  protected readonly control: Int32Array
  protected readonly requestHeaders: Int32Array
  protected readonly resultHeaders: Int32Array
  protected readonly requestSlots: Uint8Array
  protected readonly resultSlots: Uint8Array
  protected readonly data: Uint8Array

  constructor(
    buffer: SharedArrayBuffer,
    /** This side's {@link owner}. */
    protected readonly self: number,
  ) {
    let at = 0
    const words = (count: number) => {
      const view = new Int32Array(buffer, at, count)
      at += count * 4
      return view
    }
    const bytes = (count: number) => {
      const view = new Uint8Array(buffer, at, count)
      at += count
      return view
    }
    this.control = words(controlWords)
    this.requestHeaders = words(ringSlots * headerWords)
    this.resultHeaders = words(ringSlots * headerWords)
    this.requestSlots = bytes(ringSlots * slotBytes)
    this.resultSlots = bytes(ringSlots * slotBytes)
    this.data = bytes(buffer.byteLength - at)
  }

  /** The exchange area, for writing a message in place before posting it. */
  get area(): Uint8Array {
    return this.data
  }

  protected get peer(): number {
    return this.self === owner.host ? owner.worker : owner.host
  }

  /** Whether this side's last publish woke the peer. */
  protected wokePeer = false

  /**
   * Bumps the peer's bell, and wakes it if it sleeps waiting for `what` ({@link waitingFor}). The
   * waker clears the sleep flag: until the peer is up and sets it again, further publishes need no
   * notify of their own.
   */
  protected ring(what: number): void {
    const c = this.control
    const toWorker = this.self === owner.host
    const bell = toWorker ? word.workerBell : word.hostBell
    Atomics.add(c, bell, 1)
    const sleeps = toWorker ? word.workerSleeps : word.hostSleeps
    this.wokePeer = Atomics.compareExchange(c, sleeps, what, waitingFor.nothing) === what
    if (this.wokePeer) Atomics.notify(c, bell)
  }

  /** Writes one chunk of a message into the exchange area and hands it to the peer. */
  protected post(
    kind: number,
    aux: number,
    flags: number,
    total: number,
    chunk: Uint8Array | undefined,
  ): void {
    const c = this.control
    if (chunk !== undefined) this.data.set(chunk)
    c[word.kind] = kind
    c[word.aux] = aux
    c[word.flags] = flags
    c[word.total] = total
    c[word.chunk] = chunk === undefined ? total : chunk.length
    Atomics.store(c, word.exchange, this.peer)
    this.ring(this.self === owner.host ? waitingFor.exchange : waitingFor.host)
  }

  /** Whether the exchange area holds a message for this side. */
  get hasMessage(): boolean {
    return Atomics.load(this.control, word.exchange) === this.self
  }

  /**
   * Frees the exchange area after reading the message in it. The worker may wait for that (to send
   * its own); the host never does.
   */
  markRead(): void {
    Atomics.store(this.control, word.exchange, owner.none)
    if (this.self === owner.host) this.ring(waitingFor.exchange)
  }

  /** Reads the message just handed over; a chunked one starts a copy of `total` bytes. */
  protected read(): { message: ChannelMessage; remaining: number } {
    const c = this.control
    const total = c[word.total] ?? 0
    const chunk = c[word.chunk] ?? 0
    const message: ChannelMessage = {
      kind: c[word.kind] ?? 0,
      aux: c[word.aux] ?? 0,
      flags: c[word.flags] ?? 0,
      seq: c[word.seq] ?? 0,
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
    const chunk = this.control[word.chunk] ?? 0
    message.payload.set(this.data.subarray(0, chunk), offset)
    return chunk
  }
}

/**
 * The worker's end: every operation blocks the worker thread, which is what makes a host call
 * synchronous for the guest.
 */
export class WorkerChannelEnd extends ChannelEnd {
  /** The request slots taken so far (the next one to look at). */
  #requestHead = 0
  /** The result slots written so far. */
  #resultTail = 0
  /** The sequence number of the call being run: what the worker's messages are about. */
  #running = 0
  /**
   * Whether the host sends calls in a burst: set when a call is taken with more queued behind it,
   * cleared when a spin waiting for the next one ends in sleep.
   */
  #burst = false

  constructor(buffer: SharedArrayBuffer) {
    super(buffer, owner.worker)
  }

  /**
   * Blocks until `ready()`, sleeping on the worker's bell. Every publish of the host bumps the
   * bell, so `ready` is checked again after each. Waiting for a call in a burst, it spins for a few
   * microseconds first: the host's next call then costs no wake-up. Only then: on a busy machine the
   * host thread may share the worker's core, and a spin would hold it up; and not after waking the
   * host, which may have been queued on this very core.
   */
  #waitUntil(ready: () => boolean, what: number): void {
    if (ready()) return
    if (what === waitingFor.call && this.#burst && !this.wokePeer) {
      const until = performance.now() + spinMs
      while (performance.now() < until) if (ready()) return
      this.#burst = false
    }
    const c = this.control
    for (;;) {
      const bell = Atomics.load(c, word.workerBell)
      Atomics.store(c, word.workerSleeps, what)
      if (ready()) break
      Atomics.wait(c, word.workerBell, bell)
    }
    Atomics.store(c, word.workerSleeps, 0)
  }

  readonly #callQueued = () => Atomics.load(this.control, word.requestTail) !== this.#requestHead
  readonly #messageArrived = () => this.hasMessage
  readonly #exchangeFree = () => Atomics.load(this.control, word.exchange) === owner.none
  readonly #resultRoom = () =>
    ((this.#resultTail - Atomics.load(this.control, word.resultHead)) | 0) < ringSlots

  /**
   * Blocks until the host queues a call, and takes it: the next one in the request ring, skipping
   * those the host took back. A call too large for a slot is received through the exchange area.
   */
  nextCall(): ChannelCall {
    const c = this.control
    const headers = this.requestHeaders
    for (;;) {
      this.#waitUntil(this.#callQueued, waitingFor.call)
      const index = this.#requestHead & (ringSlots - 1)
      const at = index * headerWords
      const state = Atomics.load(headers, at)
      if ((state & request.stateMask) !== request.posted) {
        // Revoked by the host: nothing of it runs.
        this.#requestHead = (this.#requestHead + 1) | 0
        Atomics.store(c, word.requestHead, this.#requestHead)
        continue
      }
      // Lost to a revoke just now: the next turn of the loop skips it.
      if (Atomics.compareExchange(headers, at, state, (state & ~request.stateMask) | request.taken) !== state)
        continue
      const seq = state >>> 2
      this.#running = seq
      if (((Atomics.load(c, word.requestTail) - this.#requestHead) | 0) > 1) this.#burst = true
      if ((headers[at + 3] ?? 0) & inExchange) {
        const message = this.receive()
        return {
          fn: decoder.decode(message.payload.subarray(0, message.aux)),
          input: message.payload.subarray(message.aux),
          seq,
        }
      }
      const aux = headers[at + 1] ?? 0
      const start = index * slotBytes
      return {
        fn: decoder.decode(this.requestSlots.subarray(start, start + aux)),
        input: this.requestSlots.subarray(start + aux, start + (headers[at + 2] ?? 0)),
        seq,
      }
    }
  }

  /** Gives the slot of the call just run back to the host. */
  finish(): void {
    this.#requestHead = (this.#requestHead + 1) | 0
    Atomics.store(this.control, word.requestHead, this.#requestHead)
    // The host learns of the room when it next looks; it never sleeps waiting for it.
  }

  /**
   * Sends the running call's result or failure: into the result ring when it fits a slot (waiting
   * for room if the host is behind), otherwise through the exchange area.
   */
  reply(kind: number, flags: number, payload: Uint8Array): void {
    if (payload.length > slotBytes) {
      this.send(kind, 0, flags, payload)
      return
    }
    this.#waitUntil(this.#resultRoom, waitingFor.resultRoom)
    const index = this.#resultTail & (ringSlots - 1)
    this.resultSlots.set(payload, index * slotBytes)
    const headers = this.resultHeaders
    const at = index * headerWords
    headers[at] = this.#running
    headers[at + 1] = kind
    headers[at + 2] = flags
    headers[at + 3] = payload.length
    this.#resultTail = (this.#resultTail + 1) | 0
    Atomics.store(this.control, word.resultTail, this.#resultTail)
    this.ring(waitingFor.host)
  }

  /**
   * Blocks until the host hands over a message through the exchange area, and reads all of it.
   * The payload is a copy: the area is freed before this returns.
   */
  receive(): ChannelMessage {
    this.#waitUntil(this.#messageArrived, waitingFor.exchange)
    const { message, remaining } = this.read()
    let offset = message.payload.length - remaining
    while (offset < message.payload.length) {
      this.post(MessageKind.continue, 0, 0, 0, undefined)
      this.#waitUntil(this.#messageArrived, waitingFor.exchange)
      offset += this.readChunk(message, offset)
    }
    if (remaining === 0) message.payload = message.payload.slice()
    this.markRead()
    return message
  }

  /** Sends a message about the running call through the exchange area, chunked if it must be, once the area is free. */
  send(kind: number, aux: number, flags: number, payload: Uint8Array): void {
    this.#waitUntil(this.#exchangeFree, waitingFor.exchange)
    this.control[word.seq] = this.#running
    const size = this.data.length
    for (let offset = 0; ; offset += size) {
      const last = offset + size >= payload.length
      this.post(kind, aux, flags, payload.length, payload.subarray(offset, offset + size))
      if (last) return
      this.#waitUntil(this.#messageArrived, waitingFor.exchange) // the host's `continue`
      this.markRead()
    }
  }
}

/** The host's end: waits without blocking the event loop. */
export class HostChannelEnd extends ChannelEnd {
  #stopped = false
  /** Calls written into the request ring so far. */
  #requestTail = 0
  /** Results read so far. */
  #resultHead = 0

  constructor(buffer: SharedArrayBuffer) {
    super(buffer, owner.host)
  }

  /** Whether the worker has published anything the host has not read. */
  get #pending(): boolean {
    return this.hasMessage || Atomics.load(this.control, word.resultTail) !== this.#resultHead
  }

  /**
   * Waits until the worker publishes something (a result, a message), at once if it already has;
   * false when the channel was stopped first ({@link HostChannelEnd.wake}).
   */
  async waitForWorker(): Promise<boolean> {
    const c = this.control
    for (;;) {
      if (this.#stopped) return false
      if (this.#pending) break
      const bell = Atomics.load(c, word.hostBell)
      Atomics.store(c, word.hostSleeps, waitingFor.host)
      if (this.#pending) break
      const wait = Atomics.waitAsync(c, word.hostBell, bell)
      if (wait.async) await wait.value
    }
    Atomics.store(c, word.hostSleeps, 0)
    return true
  }

  /** Free request slots. */
  get room(): number {
    return ringSlots - ((this.#requestTail - Atomics.load(this.control, word.requestHead)) | 0)
  }

  /**
   * Queues call `seq` of `fn` with `input` (JSON text encoded straight in, or bytes) in the request
   * ring; the slot it took, or -1 when the ring is full or the call does not fit a slot. With
   * `wakeLater` (the call is queued behind others, or is one of many at once) it wakes the worker
   * at the end of this turn of the event loop, with every other call queued so in the turn: a
   * worker that went to sleep between two of them then wakes once and takes them as a burst.
   * Otherwise (a call alone) it wakes the worker at once.
   */
  queue(fn: string, input: string | Uint8Array, seq: number, wakeLater = false): number {
    if (this.room === 0) return -1
    const index = this.#requestTail & (ringSlots - 1)
    const area = this.requestSlots.subarray(index * slotBytes, (index + 1) * slotBytes)
    const name = encoder.encodeInto(fn, area)
    if (name.read !== fn.length) return -1
    const written = writeInput(input, area.subarray(name.written))
    if (written === undefined) return -1
    this.#publishRequest(index, seq, name.written, name.written + written, 0, wakeLater)
    return index
  }

  /**
   * Sends call `seq` whose name and input (`payload`, the name's byte length `aux`) do not fit a
   * slot: a ring entry tells the worker to take them from the exchange area. Only while no other
   * call is in flight (the area is then free).
   */
  async sendLarge(aux: number, payload: Uint8Array, seq: number): Promise<void> {
    if (this.room === 0) throw new Error('channel: request ring full')
    this.#publishRequest(this.#requestTail & (ringSlots - 1), seq, 0, 0, inExchange, false)
    this.control[word.seq] = seq
    const size = this.data.length
    for (let offset = 0; ; offset += size) {
      const last = offset + size >= payload.length
      this.post(MessageKind.call, aux, 0, payload.length, payload.subarray(offset, offset + size))
      if (last) return
      if (!(await this.#messageBack())) throw new Error('channel closed') // the worker's `continue`
      this.markRead()
    }
  }

  #publishRequest(
    index: number,
    seq: number,
    aux: number,
    length: number,
    flags: number,
    wakeLater: boolean,
  ): void {
    const headers = this.requestHeaders
    const at = index * headerWords
    headers[at + 1] = aux
    headers[at + 2] = length
    headers[at + 3] = flags
    Atomics.store(headers, at, ((seq & request.seqMask) << 2) | request.posted)
    this.#requestTail = (this.#requestTail + 1) | 0
    Atomics.store(this.control, word.requestTail, this.#requestTail)
    if (!wakeLater) this.ring(waitingFor.call)
    else if (!this.#ringDeferred) {
      this.#ringDeferred = true
      setImmediate(this.#ringForDeferred)
    }
  }

  /** Whether a ring for calls queued to wake the worker later waits for the end of this turn (`queue`). */
  #ringDeferred = false
  readonly #ringForDeferred = () => {
    this.#ringDeferred = false
    this.ring(waitingFor.call)
  }

  /** Takes back call `seq` queued in `slot` if the worker has not taken it; true when taken back. */
  revoke(slot: number, seq: number): boolean {
    if (slot < 0) return false
    const posted = ((seq & request.seqMask) << 2) | request.posted
    const revoked = (posted & ~request.stateMask) | request.revoked
    return Atomics.compareExchange(this.requestHeaders, slot * headerWords, posted, revoked) === posted
  }

  /** The oldest result in the result ring not yet read, if any: valid until {@link HostChannelEnd.shiftResult}. */
  peekResult(): ChannelMessage | undefined {
    if (Atomics.load(this.control, word.resultTail) === this.#resultHead) return undefined
    const index = this.#resultHead & (ringSlots - 1)
    const headers = this.resultHeaders
    const at = index * headerWords
    const start = index * slotBytes
    return {
      seq: headers[at] ?? 0,
      kind: headers[at + 1] ?? 0,
      flags: headers[at + 2] ?? 0,
      aux: 0,
      payload: this.resultSlots.subarray(start, start + (headers[at + 3] ?? 0)),
    }
  }

  /** Frees the slot of the result just read. */
  shiftResult(): void {
    this.#resultHead = (this.#resultHead + 1) | 0
    Atomics.store(this.control, word.resultHead, this.#resultHead)
    this.ring(waitingFor.resultRoom)
  }

  /** Waits for the worker's answer in the exchange area; false when the channel was stopped first. */
  async #messageBack(): Promise<boolean> {
    while (!this.hasMessage) if (!(await this.waitForWorker())) return false
    return true
  }

  /** Hands the worker a message of UTF-8 text, encoded straight into the exchange area; false if it does not fit. */
  postText(kind: number, text: string): boolean {
    const { read, written } = encoder.encodeInto(text, this.data)
    if (read !== text.length) return false
    const c = this.control
    c[word.kind] = kind
    c[word.aux] = 0
    c[word.flags] = 0
    c[word.total] = written
    c[word.chunk] = written
    Atomics.store(c, word.exchange, owner.worker)
    this.ring(waitingFor.exchange)
    return true
  }

  /**
   * The worker's message in the exchange area, read whole (a chunked one is received chunk by
   * chunk); `undefined` when the channel was stopped meanwhile. Mark it read, or answer it.
   */
  async receive(): Promise<ChannelMessage | undefined> {
    const { message, remaining } = this.read()
    let offset = message.payload.length - remaining
    while (offset < message.payload.length) {
      this.post(MessageKind.continue, 0, 0, 0, undefined)
      if (!(await this.#messageBack())) return undefined
      offset += this.readChunk(message, offset)
    }
    return message
  }

  /** Sends a message through the exchange area (an answer to the worker's), chunked if it must be. */
  async send(kind: number, aux: number, payload: Uint8Array): Promise<void> {
    const size = this.data.length
    for (let offset = 0; ; offset += size) {
      const last = offset + size >= payload.length
      this.post(kind, aux, 0, payload.length, payload.subarray(offset, offset + size))
      if (last) return
      if (!(await this.#messageBack())) throw new Error('channel closed') // the worker's `continue`
      this.markRead()
    }
  }

  /**
   * The worker's final message for the oldest unread call, if it sits whole in the exchange area:
   * lets the host keep the result of a call that finished just as its instance is being stopped.
   */
  peekFinal(): ChannelMessage | undefined {
    const message = this.peekWhole()
    const kind = message?.kind
    return kind === MessageKind.result || kind === MessageKind.failure ? message : undefined
  }

  /**
   * The worker's message in the exchange area if it sits there whole (as a host call does, unless
   * its arguments are larger than the area): read in the same turn, with no wait. Mark it read, or
   * answer it.
   */
  peekWhole(): ChannelMessage | undefined {
    if (!this.hasMessage || this.control[word.chunk] !== this.control[word.total]) return undefined
    return this.read().message
  }

  /** Stops the channel: a pending {@link HostChannelEnd.waitForWorker} resolves false (the worker was terminated). */
  wake(): void {
    this.#stopped = true
    Atomics.notify(this.control, word.hostBell)
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
