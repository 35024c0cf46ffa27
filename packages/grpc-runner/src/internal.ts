// `@corral/grpc-runner/internal`: for sibling packages (the bench, the manager, other hosts' services
// over the broker) and tests. Not a stable API: what users need is in the package's main entry.
export type { BrokerListen } from './grpc-broker.js'
export { GrpcBroker } from './grpc-broker.js'
export { codeFromStatus, statusFromCode } from './grpc-status.js'
export type { HandshakeLine } from './handshake-line.js'
export { parseHandshakeLine } from './handshake-line.js'
export type { LogEntry } from './plugin-log.js'
export { parseHclogLine } from './plugin-log.js'
