/**
 * `@corral/wasm-runner/extism`: Extism JS's `createPlugin`, backed by Corral's WASM runner. An
 * Extism JS user switches with one import.
 */
export type { ExtismHostFunction, ExtismHostFunctions } from '../abi/extism/current-plugin.js'
export { CurrentPlugin, CurrentPlugin as CallContext, PluginOutput } from '../abi/extism/current-plugin.js'
export type {
  ExtismLogger,
  ExtismPlugin,
  ExtismPlugin as Plugin,
  ExtismPluginOptions,
} from './create-plugin.js'
export { createPlugin, createPlugin as newPlugin } from './create-plugin.js'
export type { Manifest, ManifestLike, ManifestWasm } from './manifest-like.js'
