// Symbols below are for the runner's worker and for tests: the Extism kernel itself.
export type { ExtismInstanceOptions } from './extism-instance.js'
export { decodeExtismOutput, ExtismInstance, encodeExtismInput } from './extism-instance.js'
export type {
  ExtismConversion,
  ExtismManifest,
  ExtismWasmSource,
  FromExtismManifestOptions,
} from './extism-manifest.js'
export { fromExtismManifest } from './extism-manifest.js'
export {
  checkExtismImports,
  extismEnvFunctions,
  extismEnvModule,
  extismImports,
  extismUserModule,
  isExtismModule,
} from './import-object.js'
export type { ExtismKernelOptions, ExtismVarAccess, SyncHostCall } from './kernel.js'
export { ExtismKernel } from './kernel.js'
export { KernelMemory } from './kernel-memory.js'
export { defaultMaxVarBytes, ExtismVarStore, isVarMethod, remoteVars } from './var-store.js'
