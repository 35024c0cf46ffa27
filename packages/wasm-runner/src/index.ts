export { corralAbiVersion } from './abi/corral/corral-abi.js'
export type {
  ExtismConversion,
  ExtismManifest,
  ExtismWasmSource,
  FromExtismManifestOptions,
} from './abi/extism/extism-manifest.js'
export { fromExtismManifest } from './abi/extism/extism-manifest.js'
export type { ReadRegistrationOptions } from './host/read-registration.js'
export { readRegistration } from './host/read-registration.js'
export { defaultIdleTimeoutMs, type WasmPlugin } from './host/wasm-plugin.js'
export type { WasmLoadOptions, WasmRunner, WasmRunnerOptions } from './host/wasm-runner.js'
export { createWasmRunner } from './host/wasm-runner.js'
