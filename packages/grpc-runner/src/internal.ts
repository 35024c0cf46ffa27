// `@corral/grpc-runner/internal`: for sibling packages (the bench, the manager, other hosts' services
// over the broker) and tests. Not a stable API: what users need is in the package's main entry. The
// wire rules both ends share (status table, handshake line) are `@corral/proto`'s.
export type { BrokerListen } from './grpc-broker.js'
export { GrpcBroker } from './grpc-broker.js'
export type { LogEntry } from './plugin-log.js'
export { parseHclogLine } from './plugin-log.js'
