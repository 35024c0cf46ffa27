import { StdioChannel, type StdioData } from '@corral/proto'
import type { ServerWritableStream } from '@grpc/grpc-js'

/** The largest piece of stdout or stderr sent as one message: the host takes no message above its limit. */
const stdioChunkBytes = 64 << 10

/**
 * What the plugin's own code prints, once the handshake line is out: while the host listens on
 * go-plugin's `plugin.GRPCStdio`, stdout and stderr go to it (so nothing printed can pass for
 * protocol output), and to the pipes otherwise.
 */
export class StdioForwarder {
  readonly #streams = new Set<ServerWritableStream<unknown, StdioData>>()

  /** Serves the host's `StreamStdio`: the stream gets every write until it ends. */
  attach(stream: ServerWritableStream<unknown, StdioData>): void {
    this.#streams.add(stream)
    const drop = () => this.#streams.delete(stream)
    stream.on('cancelled', drop)
    stream.on('error', drop)
    stream.on('close', drop)
  }

  /** Takes over `process.stdout.write` and `process.stderr.write`; call it after the handshake line. */
  capture(): void {
    for (const [target, channel] of [
      [process.stdout, StdioChannel.STDOUT],
      [process.stderr, StdioChannel.STDERR],
    ] as const) {
      const original = target.write.bind(target)
      target.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
        if (this.#streams.size === 0) return (original as (...args: unknown[]) => boolean)(chunk, ...rest)
        const data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
        // In pieces: a huge write is still output.
        for (let at = 0; at < data.length; at += stdioChunkBytes) {
          const piece = data.subarray(at, at + stdioChunkBytes)
          for (const stream of this.#streams) stream.write({ channel, data: piece })
        }
        const callback = rest.find((arg) => typeof arg === 'function') as (() => void) | undefined
        callback?.()
        return true
      }) as typeof target.write
    }
  }
}
