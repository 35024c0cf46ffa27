export { corralHandshake } from '@corral/proto'
export type {
  HostApi,
  HostMethod,
  HostMethodArgs,
  HostMethodResult,
  Registration,
  RouteRequest,
  RouteResponse,
  RouteUser,
} from '@corral/types'
export { PluginError } from '@corral/types'
export type {
  BytesFunction,
  CallContext,
  InitContext,
  MarkedBytesFunction,
  PluginDefinition,
  PluginFunction,
} from './define-plugin.js'
export { bytesFunction, definePlugin } from './define-plugin.js'
export type { ServedPlugin, ServeOptions } from './serve.js'
export { serve } from './serve.js'
