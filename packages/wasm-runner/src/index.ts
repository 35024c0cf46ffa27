export { corralAbiVersion } from './corral-abi.js'
export type {
  ExtismConversion,
  ExtismManifest,
  ExtismWasmSource,
  FromExtismManifestOptions,
} from './extism/extism-manifest.js'
export { fromExtismManifest } from './extism/extism-manifest.js'
export type { WasmPlugin } from './wasm-plugin.js'
export type { WasmRunner, WasmRunnerOptions } from './wasm-runner.js'
export { createWasmRunner } from './wasm-runner.js'

// Symbols below are for other Corral packages (the manager, the bench, the Extism kernel beside
// the Corral ABI). They are not part of the plugin-author or host-author surface.

export type { Preopen } from './fs-sandbox.js'
export { resolvePreopens } from './fs-sandbox.js'
export type {
  AbiCheck,
  AbiName,
  CheckedModule,
  GuestFactory,
  GuestInstance,
  GuestOptions,
  HostBridge,
  LifecycleFunction,
} from './guest-abi.js'
export { GuestCallError, guestFailure, lifecycleFunctions } from './guest-abi.js'
export { checkModule, ModuleCache } from './module-cache.js'
export type { WasiOptions } from './wasi.js'
export { createWasiImports, wasiFunctionNames, wasiModuleName } from './wasi.js'
export type {
  ExternKind,
  FuncType,
  MemoryLimits,
  ModuleExport,
  ModuleImport,
  ModuleInfo,
  ValueType,
} from './wasm-binary.js'
export { capModuleMemory, formatFuncType, isFuncType, readModuleInfo, wasmPageBytes } from './wasm-binary.js'
