import type { HostCallRequest, HostCallResponse } from '@corral/proto'
import { hostService, parseJsonBytes } from '@corral/proto'
import { type HostCallHandler, PluginError } from '@corral/types'
import {
  type Server,
  type ServerDuplexStream,
  type ServerUnaryCall,
  type sendUnaryData,
  status,
} from '@grpc/grpc-js'
import type { CallTokens } from './call-tokens.js'
import { HostCallSlots } from './host-call-slots.js'

/**
 * How many host calls of one plugin the host runs at once, and how many bytes of their arguments it
 * holds (one larger call runs alone): past either (or {@link maxHostCallBytesPerSecond}), the rest
 * wait, and the host reads no more of the plugin's call streams, so a plugin that floods them waits
 * on its own writes.
 */
export const maxHostCallsInFlight = 256
export const maxHostCallBytesInFlight = 32 << 20
/**
 * How many bytes of a plugin's host call arguments the host takes in a second: inflating and parsing
 * them takes the host's own thread (some 20 ms per MiB here, when they come compressed), and the
 * host API's rate limits see a call only once it is parsed.
 */
export const maxHostCallBytesPerSecond = 8 << 20
/**
 * How many call streams of one plugin the host serves at once (the SDKs keep one, and open another
 * only when it broke): grpc-js reads and parses some of what comes on a stream even while the host
 * reads no more of it, so each stream is room for more of the plugin's arguments in the host.
 */
export const maxCallStreams = 2

/**
 * Serves `HostService` to one plugin over the broker: each host call must carry the token of a call
 * of this plugin in flight, stay within that call's `max_host_call_bytes`, and reaches `hostApi` with
 * the call's plugin, token, deadline and chain (the host API holds it to the deadline). Every failure
 * goes back as a `PluginError`'s data. Calls come one per unary `Call`, or tagged with ids on a
 * `CallStream`.
 */
export function serveHostService(
  server: Server,
  plugin: string,
  calls: CallTokens,
  hostApi: HostCallHandler,
): void {
  let streams = 0
  const slots = new HostCallSlots({
    calls: maxHostCallsInFlight,
    bytes: maxHostCallBytesInFlight,
    bytesPerSecond: maxHostCallBytesPerSecond,
  })
  // A host call whose stream or call is gone while it waits for its slot never starts; its slot is
  // held until its answer has left the host (or can no longer).
  const answer = (request: HostCallRequest, gone: () => boolean, reply: Reply) =>
    slots.run(request.argsJson?.length ?? 0, async (hold) => {
      if (gone()) return
      const response = await hostCall(request, plugin, calls, hostApi)
      hold((response.resultJson?.length ?? 0) + (response.errorJson?.length ?? 0))
      await reply(response)
    })
  server.addService(hostService, {
    call: (
      call: ServerUnaryCall<HostCallRequest, HostCallResponse>,
      callback: sendUnaryData<HostCallResponse>,
    ) => {
      // A unary call came whole, and more can come on any number of connections: it is refused when
      // the plugin's slots are full rather than held until they free (a stream stops being read).
      if (slots.full) {
        callback(null, refusal(call.request, plugin))
        return
      }
      void answer(
        call.request,
        () => call.cancelled,
        (response) =>
          new Promise<void>((settle) => {
            // grpc-js tells 'cancelled' once the call is over, however it ended: its answer and
            // status have left, or the plugin is gone. Until then the answer waits in the host (a
            // plugin that reads none of it at the HTTP/2 level), and keeps its slot.
            if (call.cancelled) return settle()
            call.once('cancelled', () => settle())
            callback(null, response)
          }),
      )
    },
    callStream: (stream: ServerDuplexStream<HostCallRequest, HostCallResponse>) => {
      if (streams >= maxCallStreams) {
        stream.emit('error', {
          code: status.RESOURCE_EXHAUSTED,
          details: `the plugin has ${maxCallStreams} host call streams open, as many as it may`,
        })
        return
      }
      streams++
      stream.once('close', () => streams--)
      serveHostCallStream(stream, slots, answer)
    },
  })
}

/** Sends a host call's answer; settles once it has left the host, or can no longer. */
type Reply = (response: HostCallResponse) => Promise<void>

/**
 * Answers each request of a `CallStream` with its id, in the order they finish. It reads no more of
 * the stream while the plugin's host call slots are full, or while the stream's buffer holds answers
 * the plugin has not read. The plugin's end of the stream is answered once every call it made has
 * been.
 */
function serveHostCallStream(
  stream: ServerDuplexStream<HostCallRequest, HostCallResponse>,
  slots: HostCallSlots,
  answer: (request: HostCallRequest, gone: () => boolean, reply: Reply) => Promise<void>,
): void {
  let inFlight = 0
  let draining = false
  let ended = false
  let closed = false
  /** What settles the answers written and not yet sent. */
  const unsent = new Set<() => void>()
  const readMore = () => {
    if (stream.isPaused() && !draining && !slots.full) stream.resume()
  }
  const stopListening = slots.onFree(readMore)
  const close = () => {
    closed = true
    stopListening()
    for (const settle of unsent) settle()
    unsent.clear()
  }
  stream.on('error', close)
  stream.on('cancelled', close)
  stream.on('close', close)
  stream.on('finish', stopListening)
  stream.on('drain', () => {
    draining = false
    readMore()
  })
  const reply =
    (id: number): Reply =>
    (response) =>
      new Promise<void>((settle) => {
        if (closed) return settle()
        unsent.add(settle)
        const sent = () => {
          unsent.delete(settle)
          settle()
        }
        if (!stream.write({ ...response, id }, sent)) {
          draining = true
          stream.pause()
        }
      })
  stream.on('data', (request: HostCallRequest) => {
    inFlight++
    const answered = answer(request, () => closed, reply(request.id ?? 0)) // takes its slot now, if one is free
    if (slots.full) stream.pause()
    void answered.then(() => {
      inFlight--
      if (closed) return
      readMore()
      if (ended && inFlight === 0) stream.end()
    })
  })
  stream.on('end', () => {
    ended = true
    if (inFlight === 0 && !closed) stream.end()
  })
}

/** The answer to a unary host call that came while the plugin's host call slots were full. */
function refusal(request: HostCallRequest, plugin: string): HostCallResponse {
  const error = new PluginError(
    'resource_exhausted',
    `host call ${request.method ?? ''}: the plugin has as many host calls running as it may (${maxHostCallsInFlight}, or their bytes); try again`,
    { plugin },
  )
  return { errorJson: Buffer.from(JSON.stringify(error.toData())) }
}

async function hostCall(
  request: HostCallRequest,
  plugin: string,
  calls: CallTokens,
  hostApi: HostCallHandler,
): Promise<HostCallResponse> {
  const method = request.method ?? ''
  const token = request.token ?? ''
  try {
    const record = calls.get(token)
    if (record === undefined) {
      throw token === ''
        ? new PluginError(
            'permission_denied',
            `host call ${method}: a host call must carry its call's token`,
            {
              plugin,
            },
          )
        : new PluginError(
            'invalid_argument',
            `host call ${method}: no call of this plugin has token ${token}`,
            {
              plugin,
            },
          )
    }
    // Checked here as well as at the broker's transport: its receive limit is set when it starts.
    const bytes = request.argsJson
    const cap = record.maxHostCallBytes
    if (bytes && bytes.length > cap) {
      throw new PluginError(
        'resource_exhausted',
        `host call ${method}: ${bytes.length} bytes of arguments, more than max_host_call_bytes ${cap}`,
        { plugin },
      )
    }
    let args: unknown = null
    if (bytes && bytes.length > 0) {
      try {
        args = parseJsonBytes(bytes)
      } catch {
        throw new PluginError('invalid_argument', `host call ${method}: the arguments are not JSON`, {
          plugin,
        })
      }
    }
    const context = {
      plugin,
      token,
      deadline: record.deadline,
      ...(record.chain === undefined ? {} : { chain: record.chain }),
    }
    // The host API owns host-call deadlines (one rule for both runtimes): it gets the call's and
    // refuses or cuts off what runs past it. Awaited here, always: no answer is left behind.
    const result = await hostApi(method, args, context)
    return { resultJson: Buffer.from(JSON.stringify(result ?? null)) }
  } catch (error) {
    return { errorJson: Buffer.from(JSON.stringify(PluginError.from(error, 'internal', plugin).toData())) }
  }
}
