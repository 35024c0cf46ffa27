export type { CertificatePair, MtlsMaterial } from './auto-mtls.js'
export { channelSecurity, generateCertificate, serverOptions, serverSecurity } from './auto-mtls.js'
export { corralHandshake } from './handshake.js'
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
