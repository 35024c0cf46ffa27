export { corralHandshake } from '@corral/proto'
export type {
  HostApi,
  HostMethod,
  HostMethodArgs,
  HostMethodResult,
  RouteRequest,
  RouteResponse,
  RouteUser,
} from '@corral/types'
export { PluginError } from '@corral/types'
export type {
  BytesFunction,
  CallContext,
  CheckedFunction,
  InitContext,
  MarkedBytesFunction,
  PluginDefinition,
  PluginFunction,
  PluginRegistration,
} from './define-plugin.js'
export { bytesFunction, definePlugin, withArgs } from './define-plugin.js'
export { jsonRoute } from './json-route.js'
export type { PluginCache } from './plugin-cache.js'
export type { ServedPlugin, ServeOptions } from './serve.js'
export { serve } from './serve.js'
