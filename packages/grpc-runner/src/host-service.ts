import type { HostCallRequest, HostCallResponse } from '@corral/proto'
import { hostService, parseJsonBytes } from '@corral/proto'
import { type HostCallHandler, PluginError } from '@corral/types'
import type { Server, ServerDuplexStream, ServerUnaryCall, sendUnaryData } from '@grpc/grpc-js'
import type { CallTokens } from './call-tokens.js'

/**
 * How many host calls of one stream the host runs at once: past it, it reads no more of the stream
 * until some have answered, so a plugin that floods it waits on its own writes.
 */
export const maxHostCallsInFlight = 256

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
  server.addService(hostService, {
    call: (
      call: ServerUnaryCall<HostCallRequest, HostCallResponse>,
      callback: sendUnaryData<HostCallResponse>,
    ) => {
      void hostCall(call.request, plugin, calls, hostApi).then((response) => callback(null, response))
    },
    callStream: (stream: ServerDuplexStream<HostCallRequest, HostCallResponse>) => {
      serveHostCallStream(stream, (request) => hostCall(request, plugin, calls, hostApi))
    },
  })
}

/**
 * Answers each request of a `CallStream` with its id, in the order they finish. It reads no more of
 * the stream while {@link maxHostCallsInFlight} run, or while the plugin does not read its answers
 * (they wait in the host's memory only up to the stream's buffer). The plugin's end of the stream
 * is answered once every call it made has been.
 */
function serveHostCallStream(
  stream: ServerDuplexStream<HostCallRequest, HostCallResponse>,
  answer: (request: HostCallRequest) => Promise<HostCallResponse>,
): void {
  let inFlight = 0
  let draining = false
  let ended = false
  let closed = false
  const close = () => {
    closed = true
  }
  const readMore = () => {
    if (stream.isPaused() && !draining && inFlight < maxHostCallsInFlight) stream.resume()
  }
  stream.on('error', close)
  stream.on('cancelled', close)
  stream.on('drain', () => {
    draining = false
    readMore()
  })
  stream.on('data', (request: HostCallRequest) => {
    inFlight++
    if (inFlight >= maxHostCallsInFlight) stream.pause()
    void answer(request).then((response) => {
      inFlight--
      if (closed) return
      if (!stream.write({ ...response, id: request.id ?? 0 })) {
        draining = true
        stream.pause()
      }
      readMore()
      if (ended && inFlight === 0) stream.end()
    })
  })
  stream.on('end', () => {
    ended = true
    if (inFlight === 0 && !closed) stream.end()
  })
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
