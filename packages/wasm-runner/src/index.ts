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

// Symbols below are for other Corral packages (the CLI's validate reads a module's exports).

export type { ExternKind, ModuleExport, ModuleInfo } from './abi/wasm-binary.js'
export { readModuleInfo } from './abi/wasm-binary.js'
