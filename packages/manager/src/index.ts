// biome-ignore-all assist/source/organizeImports: what a host needs comes first, the parts after.

// For hosts: the plugin manager, the backends it keeps state in, and plugin package signatures.
export type { Backends, BackendsOptions } from './backends/create-backends.js'
export { createBackends } from './backends/create-backends.js'
export type {
  GroupStore,
  JobInfo,
  JobScheduler,
  LatencyHistogram,
  ManagerCallOptions,
  ManagerEvent,
  ManagerEvents,
  MountedErrorCode,
  MountedMenuItem,
  MountedRoute,
  MountedTemplate,
  MountedWidget,
  PluginInfo,
  PluginManager,
  PluginManagerOptions,
  PluginMetrics,
  PluginSource,
  Registries,
  SignatureOptions,
  StateTransition,
} from './plugin-manager/manager-api.js'
export { createPluginManager } from './plugin-manager/plugin-manager.js'
export {
  generateSigningKeyPair,
  signPluginPackage,
  verifyPluginPackage,
} from './plugin-manager/signatures/plugin-signature.js'

// For hosts that assemble their own parts (and for other Corral packages): backends, the sandboxed
// host API, the policy store and audit log, rate limiters.
export type { CacheStore } from './backends/cache-store.js'
export type { EventBus, HostEvent, HostEventListener } from './backends/event-bus.js'
export { createLocalEventBus } from './backends/event-bus.js'
export type { Mailer, OutgoingEmail } from './backends/mailer.js'
export { createMemoryCache } from './backends/memory-cache.js'
export type { OutboxEmail, OutboxMailer } from './backends/outbox-mailer.js'
export { createOutboxMailer } from './backends/outbox-mailer.js'
export { createPostgresDatabase } from './backends/postgres-database.js'
export type { SmtpMailerOptions } from './backends/smtp-mailer.js'
export { createSmtpMailer } from './backends/smtp-mailer.js'
export type {
  SqlDatabase,
  SqlDialect,
  SqlPrincipal,
  SqlRunOptions,
  SqlValue,
} from './backends/sql-database.js'
export type { SqliteDatabaseOptions } from './backends/sqlite-database.js'
export { createSqliteDatabase } from './backends/sqlite-database.js'
export type { HostCallMetricsSnapshot, MethodMetrics } from './host-api/call-metrics.js'
export type { PolicyGrantLookupOptions } from './host-api/grant-lookup.js'
export { createPolicyGrantLookup } from './host-api/grant-lookup.js'
export type {
  ConfigSource,
  GrantLookup,
  HostResolver,
  PluginCaller,
  PluginCallOptions,
  SandboxLimits,
  TranslationRequest,
  Translator,
} from './host-api/sandbox-dependencies.js'
export type {
  CallerVersion,
  SandboxedHostApi,
  SandboxedHostApiOptions,
} from './host-api/sandboxed-host-api.js'
export { createSandboxedHostApi, defaultSandboxLimits } from './host-api/sandboxed-host-api.js'
export type { AuditEntry, AuditLog, AuditQuery } from './policy-store/audit-log.js'
export { createSqlAuditLog } from './policy-store/audit-log.js'
export type { PolicyStore, SqlPolicyStoreOptions } from './policy-store/policy-store.js'
export { createSqlPolicyStore } from './policy-store/policy-store.js'
export type { RateDecision, RateLimiter } from './rate-limit/rate-limiter.js'
export { createMemoryRateLimiter } from './rate-limit/rate-limiter.js'
