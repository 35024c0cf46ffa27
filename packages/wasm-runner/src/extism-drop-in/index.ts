/**
 * `@corral/wasm-runner/extism`: Extism JS's `createPlugin`, backed by Corral's WASM runner. An
 * Extism JS user switches with one import: `@extism/extism` exports `createPlugin` as its default
 * export, by name and as `newPlugin`, and so does this module.
 */
export type { ExtismHostFunction, ExtismHostFunctions } from '../abi/extism/current-plugin.js'
export { CurrentPlugin, CurrentPlugin as CallContext, PluginOutput } from '../abi/extism/current-plugin.js'
export type {
  ExtismLogger,
  ExtismPlugin,
  ExtismPlugin as Plugin,
  ExtismPluginOptions,
} from './create-plugin.js'
// `import createPlugin from '…'`, the form Extism JS's README shows, and the two named forms.
export { createPlugin as default, createPlugin, createPlugin as newPlugin } from './create-plugin.js'
export type { Manifest, ManifestLike, ManifestWasm } from './manifest-like.js'
