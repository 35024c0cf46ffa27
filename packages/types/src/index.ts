export { callTimeoutMs, throwIfCanceled } from './call-deadline.js'
export type {
  HostApi,
  HostApiMethods,
  HostCallContext,
  HostCallHandler,
  HostMethod,
  HostMethodArgs,
  HostMethodResult,
  HostWorkMeter,
  Logger,
  LogLevel,
} from './host-api.js'
export { hostMethods, logLevels } from './host-api.js'
export { hostLogFieldNames, maxPluginLogFieldsLength, pluginLogFields } from './log-fields.js'
export type {
  BinaryEntry,
  ExtismOptions,
  JsonSchema,
  Manifest,
  NodeEntry,
  PluginEntry,
  PluginRuntime,
  ResourceRequest,
  WasmEntry,
  WasmPoolOptions,
} from './manifest.js'
export type { Access, Permission, PermissionType } from './permission.js'
export { permissionTypes } from './permission.js'
export type {
  AbortSignalLike,
  CallOptions,
  HealthStatus,
  LoadOptions,
  Plugin,
  PluginState,
  Runner,
  RuntimeState,
  RuntimeStateChange,
} from './plugin.js'
export type {
  FunctionArguments,
  FunctionResult,
  PluginClient,
  TypedArguments,
} from './plugin-client.js'
export type {
  CorralErrorCode,
  FieldError,
  PluginDefinedErrorCode,
  PluginErrorCode,
  PluginErrorData,
  PluginErrorOptions,
} from './plugin-error.js'
export {
  corralErrorCodes,
  formatFieldPath,
  isPluginError,
  isPluginErrorCode,
  isPluginErrorData,
  PluginError,
} from './plugin-error.js'
export type { EffectiveGrant, PolicyStatus, RateLimits, ResourceLimits, ResourcePolicy } from './policy.js'
export type {
  ErrorCodeSpec,
  EventSubscription,
  GroupSpec,
  HttpMethod,
  I18nSpec,
  JobSpec,
  MenuItem,
  MenuLocation,
  PluginCapabilities,
  PluginIdentity,
  Registration,
  RouteRequest,
  RouteResponse,
  RouteSpec,
  RouteUser,
  TemplateSpec,
  WidgetSize,
  WidgetSpec,
} from './registration.js'
export type { RestartOptions, RestartTarget, SupervisorClock } from './restart-supervisor.js'
export { defaultRestartOptions, RestartSupervisor } from './restart-supervisor.js'
export { stderrLogger } from './stderr-logger.js'
