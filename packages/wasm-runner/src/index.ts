export { corralAbiVersion } from './abi/corral/corral-abi.js'
export type {
  ExtismConversion,
  ExtismManifest,
  ExtismWasmSource,
  FromExtismManifestOptions,
} from './abi/extism/extism-manifest.js'
export { fromExtismManifest } from './abi/extism/extism-manifest.js'
export type { WasmPlugin } from './host/wasm-plugin.js'
export type { WasmRunner, WasmRunnerOptions } from './host/wasm-runner.js'
export { createWasmRunner } from './host/wasm-runner.js'

// Symbols below are for other Corral packages (the manager, the bench, the Extism kernel beside
// the Corral ABI). They are not part of the plugin-author or host-author surface.

export type {
  AbiCheck,
  AbiName,
  CheckedModule,
  GuestFactory,
  GuestInstance,
  GuestOptions,
  HostBridge,
  LifecycleFunction,
} from './abi/guest-abi.js'
export { GuestCallError, guestFailure, lifecycleFunctions } from './abi/guest-abi.js'
export { wasiFunctionNames, wasiModuleName } from './abi/wasi-names.js'
export type {
  ExternKind,
  FuncType,
  MemoryLimits,
  ModuleExport,
  ModuleImport,
  ModuleInfo,
  ValueType,
} from './abi/wasm-binary.js'
export {
  capModuleMemory,
  formatFuncType,
  isFuncType,
  readModuleInfo,
  wasmPageBytes,
} from './abi/wasm-binary.js'
export { checkModule, ModuleCache } from './host/module-cache.js'
export { resolvePreopens } from './host/preopens.js'
export type { Preopen } from './worker/fs-sandbox.js'
export type { WasiOptions } from './worker/wasi.js'
export { createWasiImports } from './worker/wasi.js'
