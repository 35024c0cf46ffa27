/** The messages between `SqliteExecutorPool` and its `sqlite-executor` processes, and their frames on the pipes. */
import { PluginError } from '@corral/types'
import type { SqlPrincipal, SqlValue } from './sql-database.js'

/** What the pool asks of an executor. */
export type ExecutorRequest =
  | {
      kind: 'run'
      id: number
      sql: string
      params: readonly SqlValue[]
      /** The statement was checked as a read: refuse it if SQLite says it writes. */
      readOnly: boolean
      /** Send back the rows it returns (`db.query`), or only count them (`db.exec`). */
      returnRows: boolean
      /** Returned rows past this fail the statement with `resource_exhausted`, unread. */
      maxRows?: number
      /** Run it on this plugin's connection, checked against its grant (see `sqlite-grant-check.ts`). */
      principal?: SqlPrincipal
    }
  /** Commit the changes of the writing statement `id` (the pool kills an executor whose changes must go). */
  | { kind: 'commit'; id: number }

/** What an executor answers. */
export type ExecutorReply =
  /** Started and connected: it takes statements now. */
  | { kind: 'ready'; id: 0 }
  /** A statement that only reads has run. */
  | { kind: 'done'; id: number; rows: Record<string, unknown>[]; changes: number }
  /** A writing statement has run, inside a transaction that waits for a `commit`. */
  | { kind: 'ran'; id: number; rows: Record<string, unknown>[]; changes: number }
  /** The `commit` is done. */
  | { kind: 'committed'; id: number }
  | {
      kind: 'error'
      id: number
      code: 'invalid_argument' | 'permission_denied' | 'resource_exhausted' | 'unavailable'
      message: string
    }

/**
 * How long a statement waits for another connection's write lock. Long: it blocks only its own
 * executor, which is killed at the caller's deadline anyway (the host API caps it at 30 s).
 */
export const executorBusyTimeoutMs = 60_000

/** `$1`, `$2`, … are named parameters to SQLite; better-sqlite3 binds them from an object keyed `1`, `2`, …. */
export function sqlBindings(params: readonly SqlValue[]): Record<string, string | number | null> {
  const named: Record<string, string | number | null> = {}
  params.forEach((value, i) => {
    named[String(i + 1)] = typeof value === 'boolean' ? Number(value) : value
  })
  return named
}

/** A frame's header: the length of its payload in bytes (unsigned 32-bit little-endian). */
const frameHeaderBytes = 4

/**
 * The most bytes a frame's payload may have, either way: a plugin's huge result fails with
 * `resource_exhausted` rather than being buffered whole on the host.
 */
export const maxFrameBytes = 64 << 20

/**
 * A message as one frame: its length, then its UTF-8 JSON. Statements, parameters and rows are JSON
 * values (rows are made so in the executor), and JSON is the fastest way Node has to cross a pipe.
 */
export function encodeFrame(message: ExecutorRequest | ExecutorReply): Buffer {
  const json = JSON.stringify(message)
  const frame = Buffer.allocUnsafe(frameHeaderBytes + Buffer.byteLength(json))
  frame.writeUInt32LE(frame.length - frameHeaderBytes, 0)
  frame.write(json, frameHeaderBytes)
  return frame
}

/**
 * Reads frames from the chunks a pipe delivers, which split and join frames anyhow. Throws a
 * `PluginError` on a frame over its limit (as soon as its header arrives, before its payload is
 * buffered) or one that is not JSON; after that the stream is out of step, and its process must go.
 */
export class FrameReader {
  readonly #maxBytes: number
  readonly #onMessage: (message: unknown) => void
  /** The start of a frame not yet complete: its chunks, their bytes, and how many bytes it needs. */
  #partial: Buffer[] = []
  #partialBytes = 0
  #needed = 0

  constructor(onMessage: (message: unknown) => void, maxBytes = maxFrameBytes) {
    this.#onMessage = onMessage
    this.#maxBytes = maxBytes
  }

  /** Takes the next bytes read; calls `onMessage` for each frame they complete. The caller may reuse `chunk`. */
  push(chunk: Buffer): void {
    let bytes = chunk
    if (this.#partialBytes > 0) {
      // Chunks are joined once, when the frame is complete: a large frame is not copied per chunk.
      this.#partial.push(Buffer.from(chunk))
      this.#partialBytes += chunk.length
      if (this.#partialBytes < this.#needed) return
      bytes = Buffer.concat(this.#partial, this.#partialBytes)
      this.#partial = []
      this.#partialBytes = 0
    }
    let offset = 0
    while (bytes.length - offset >= frameHeaderBytes) {
      const length = bytes.readUInt32LE(offset)
      if (length > this.#maxBytes) {
        throw new PluginError(
          'resource_exhausted',
          `a message of ${length} bytes is larger than the ${this.#maxBytes} bytes allowed`,
        )
      }
      const end = offset + frameHeaderBytes + length
      if (end > bytes.length) break
      this.#onMessage(parseFrame(bytes, offset + frameHeaderBytes, end))
      offset = end
    }
    if (offset === bytes.length) return
    const rest = Buffer.from(bytes.subarray(offset))
    this.#partial = [rest]
    this.#partialBytes = rest.length
    this.#needed = rest.length < frameHeaderBytes ? frameHeaderBytes : frameHeaderBytes + rest.readUInt32LE(0)
  }
}

function parseFrame(bytes: Buffer, start: number, end: number): unknown {
  try {
    return JSON.parse(bytes.toString('utf8', start, end))
  } catch (error) {
    throw new PluginError('unavailable', 'a malformed message from the other end of the pipe', {
      cause: error,
    })
  }
}
