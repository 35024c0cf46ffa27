export type { CertificatePair, MtlsMaterial } from './auto-mtls.js'
export { channelSecurity, generateCertificate, serverOptions, serverSecurity } from './auto-mtls.js'
export type { ErrorStatus } from './error-metadata.js'
export {
  encodeErrorJson,
  errorFromStatus,
  errorMetadataKey,
  errorMetadataMaxBytes,
  errorStatus,
  parseErrorJson,
} from './error-metadata.js'
export { codeFromStatus, statusFromCode } from './grpc-status.js'
export { corralHandshake } from './handshake.js'
export type { HandshakeLine } from './handshake-line.js'
export { coreProtocolVersion, formatHandshakeLine, parseHandshakeLine } from './handshake-line.js'
export { parseJsonBytes } from './json-bytes.js'
export type { PeerSecrets } from './peer-secret.js'
export {
  formatPeerSecretsLine,
  generatePeerSecrets,
  parsePeerSecretsLine,
  peerSecretMetadataKey,
  peerSecretsEnv,
  requirePeerSecret,
  sendPeerSecret,
} from './peer-secret.js'
export { bidi, deadlineIn, unary } from './rpc.js'
export type {
  CallBatch,
  CallRequest,
  CallResult,
  ConnInfo,
  HostCallRequest,
  HostCallResponse,
  ResultBatch,
  StdioData,
} from './wire.js'
export {
  brokerService,
  controllerService,
  healthService,
  hostService,
  messageEnvelopeBytes,
  pluginService,
  resultBatchBytes,
  ServingStatus,
  StdioChannel,
  stdioService,
} from './wire.js'
