import { type CallResult, deadlineIn, errorFromStatus, pluginService } from '@corral/proto'
import { type CallOptions, PluginError } from '@corral/types'
import type { Client } from '@grpc/grpc-js'
import type { OutgoingCall } from './call-stream.js'
import type { CallRecord } from './call-tokens.js'

/**
 * One call as a unary `PluginService/Call` (a plugin without the call stream, as a stock go-plugin
 * one): gRPC's deadline bounds it, the signal cancels it, and `record.reject` fails it at once
 * (the process is gone or stopping).
 */
export function unaryCall(
  rpc: Client,
  request: OutgoingCall,
  record: CallRecord,
  signal: CallOptions['signal'],
  plugin: string,
): Promise<CallResult> {
  return new Promise<CallResult>((resolvePromise, reject) => {
    const fail = (error: PluginError) => {
      signal?.removeEventListener('abort', onAbort)
      reject(error)
    }
    record.reject = fail
    const call = rpc.makeUnaryRequest(
      pluginService.call.path,
      pluginService.call.requestSerialize,
      pluginService.call.responseDeserialize,
      request,
      { deadline: deadlineIn(request.timeoutMs) },
      (error, response) => {
        signal?.removeEventListener('abort', onAbort)
        if (error) reject(errorFromStatus(error, plugin, request.function))
        else resolvePromise(response as CallResult)
      },
    )
    const onAbort = () => {
      call.cancel()
      fail(new PluginError('canceled', `${request.function} was canceled`, { plugin }))
    }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
