export type { MtlsMaterial } from '@corral/proto'
export {
  brokerService,
  controllerService,
  corralHandshake,
  healthService,
  hostService,
  pluginService,
  stdioService,
} from '@corral/proto'
export type {
  GoPluginClient,
  HandshakeConfig,
  ReattachConfig,
  ReattachGoPluginOptions,
  StartGoPluginOptions,
} from './go-plugin-client.js'
export { reattachGoPlugin, startGoPlugin } from './go-plugin-client.js'
export type { BrokerAddress, BrokerListen, BrokerTarget } from './grpc-broker.js'
export { GrpcBroker } from './grpc-broker.js'
export { GrpcPlugin } from './grpc-plugin.js'
export type { GrpcRunnerOptions } from './grpc-runner.js'
export { createGrpcRunner } from './grpc-runner.js'
// Symbols below are for other libraries (tests, the bench, other hosts' services over the broker).
export { codeFromStatus, statusFromCode } from './grpc-status.js'
export type { HandshakeLine } from './handshake-line.js'
export { parseHandshakeLine } from './handshake-line.js'
export type { ReattachTarget } from './plugin-launch.js'
export type { LogEntry } from './plugin-log.js'
export { parseHclogLine } from './plugin-log.js'
export type { ProcessExit } from './plugin-process.js'
export type { SupervisionOptions } from './process-watch.js'
