// For users: the runner, and layer 1 (a go-plugin client for any go-plugin gRPC plugin) with the
// types its values carry. Sibling packages: `./internal`; tests: `./testing`.
export type {
  GoPluginClient,
  HandshakeConfig,
  ReattachConfig,
  ReattachGoPluginOptions,
  StartGoPluginOptions,
} from './go-plugin-client.js'
export { reattachGoPlugin, startGoPlugin } from './go-plugin-client.js'
export type { BrokerAddress, BrokerTarget, GrpcBroker } from './grpc-broker.js'
export type { GrpcPlugin, GrpcRunner, GrpcRunnerOptions } from './grpc-runner.js'
export { createGrpcRunner } from './grpc-runner.js'
export type { ReattachTarget } from './plugin-launch.js'
export type { ProcessExit } from './plugin-process.js'
export type { PluginUser } from './plugin-user.js'
export type { SupervisionOptions } from './process-watch.js'
