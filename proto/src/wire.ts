import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js'
import { corral, google, grpc as grpcHealth, plugin } from './gen/proto.js'

/** A protobuf.js static message class, as the generated code has them. */
interface MessageType<T> {
  encode(message: T): { finish(): Uint8Array }
  decode(data: Uint8Array): T
}

function method<Req, Res>(
  path: string,
  request: MessageType<Req>,
  response: MessageType<Res>,
  requestStream: boolean,
  responseStream: boolean,
): MethodDefinition<Req, Res> {
  const encode =
    <T>(type: MessageType<T>) =>
    (value: T): Buffer => {
      const bytes = type.encode(value).finish()
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    }
  return {
    path,
    requestStream,
    responseStream,
    requestSerialize: encode(request),
    requestDeserialize: (data: Buffer) => request.decode(data),
    responseSerialize: encode(response),
    responseDeserialize: (data: Buffer) => response.decode(data),
  }
}

/** go-plugin's broker message: where a service offered under `serviceId` listens. */
export type ConnInfo = plugin.ConnInfo.$Properties
/** A chunk of a plugin's stdout or stderr, forwarded over `plugin.GRPCStdio`. */
export type StdioData = plugin.StdioData.$Properties
/** One call (or cancel request, `cancel` set) of `PluginService`. */
export type CallRequest = corral.plugin.v1.CallRequest.$Properties
/** The outcome of one call: `resultJson` or `errorJson`. */
export type CallResult = corral.plugin.v1.CallResult.$Properties
/** Requests the host sends together on `CallStream`. */
export type CallBatch = corral.plugin.v1.CallBatch.$Properties
/** Results the plugin sends together on `CallStream`. */
export type ResultBatch = corral.plugin.v1.ResultBatch.$Properties
/** A plugin's call of the host API, with the token of the call that caused it. */
export type HostCallRequest = corral.host.v1.HostCallRequest.$Properties
/** The host API's answer: `resultJson` or `errorJson`. */
export type HostCallResponse = corral.host.v1.HostCallResponse.$Properties
/** Which stream a {@link StdioData} chunk came from. */
export const StdioChannel = plugin.StdioData.Channel
/** `grpc.health.v1` serving status. */
export const ServingStatus = grpcHealth.health.v1.HealthCheckResponse.ServingStatus

const v1 = corral.plugin.v1
const empty = google.protobuf.Empty

/** `grpc.health.v1.Health`: go-plugin answers for the service named `plugin`. */
export const healthService = {
  check: method(
    '/grpc.health.v1.Health/Check',
    grpcHealth.health.v1.HealthCheckRequest,
    grpcHealth.health.v1.HealthCheckResponse,
    false,
    false,
  ),
} satisfies ServiceDefinition

/** go-plugin's broker. */
export const brokerService = {
  startStream: method('/plugin.GRPCBroker/StartStream', plugin.ConnInfo, plugin.ConnInfo, true, true),
} satisfies ServiceDefinition

/**
 * go-plugin's controller. Its `shutdown` (go-plugin's name, fixed on the wire) asks the plugin
 * process to stop: stop serving and exit. Corral calls that "stop"; "shutdown" is the plugin's own
 * step of {@link pluginService}.
 */
export const controllerService = {
  shutdown: method('/plugin.GRPCController/Shutdown', plugin.Empty, plugin.Empty, false, false),
} satisfies ServiceDefinition

/** go-plugin's stdio forwarding. */
export const stdioService = {
  streamStdio: method('/plugin.GRPCStdio/StreamStdio', empty, plugin.StdioData, false, true),
} satisfies ServiceDefinition

/**
 * `corral.plugin.v1.PluginService`, served by the plugin: `register` (what it provides), `init` (its
 * config, before any call), `call` / `callStream` (its functions), `health`, and `shutdown`: the
 * plugin finishes its pending work within `timeoutMs`; its process keeps serving until it is stopped
 * (see {@link controllerService}).
 */
export const pluginService = {
  register: method(
    '/corral.plugin.v1.PluginService/Register',
    v1.RegisterRequest,
    v1.RegisterResponse,
    false,
    false,
  ),
  init: method('/corral.plugin.v1.PluginService/Init', v1.InitRequest, v1.InitResponse, false, false),
  call: method('/corral.plugin.v1.PluginService/Call', v1.CallRequest, v1.CallResult, false, false),
  callStream: method('/corral.plugin.v1.PluginService/CallStream', v1.CallBatch, v1.ResultBatch, true, true),
  health: method('/corral.plugin.v1.PluginService/Health', v1.HealthRequest, v1.HealthResponse, false, false),
  shutdown: method(
    '/corral.plugin.v1.PluginService/Shutdown',
    v1.ShutdownRequest,
    v1.ShutdownResponse,
    false,
    false,
  ),
} satisfies ServiceDefinition

/**
 * `corral.host.v1.HostService`, served by the host over the broker: `call` (one host call) and
 * `callStream` (every host call of a connection, tagged with ids), which the SDKs use.
 */
export const hostService = {
  call: method(
    '/corral.host.v1.HostService/Call',
    corral.host.v1.HostCallRequest,
    corral.host.v1.HostCallResponse,
    false,
    false,
  ),
  callStream: method(
    '/corral.host.v1.HostService/CallStream',
    corral.host.v1.HostCallRequest,
    corral.host.v1.HostCallResponse,
    true,
    true,
  ),
} satisfies ServiceDefinition

/**
 * A plugin sends a `ResultBatch` before its results would pass this many bytes (a larger result
 * travels alone), so the host may refuse any message above `max(max_output_bytes, resultBatchBytes)`
 * plus {@link messageEnvelopeBytes} without ever refusing a well-formed batch.
 */
export const resultBatchBytes = 256 << 10

/** Room for what a message carries besides its payload: ids, tokens, method names, framing. */
export const messageEnvelopeBytes = 16 << 10
