export type {
  ExtismConversion,
  ExtismManifest,
  ExtismWasmSource,
  FromExtismManifestOptions,
} from './extism-manifest.js'
export { fromExtismManifest } from './extism-manifest.js'
export { defaultMaxVarBytes, ExtismVarStore } from './var-store.js'

// Symbols below are for the runner itself (its worker and module checks) and for tests.

export { extismInputFromJson, extismOutputValue } from './call-data.js'
export { extismAbiCheck } from './extism-abi.js'
export { createExtismGuest } from './extism-guest.js'
export type { ExtismInstanceOptions } from './extism-instance.js'
export { ExtismInstance } from './extism-instance.js'
export type { ExtismSignature } from './import-object.js'
export {
  checkExtismImports,
  corralHostCallSignature,
  extismEnvModule,
  extismEnvSignatures,
  extismImports,
  extismUserModule,
  isExtismModule,
} from './import-object.js'
export type { ExtismKernelOptions, ExtismVarAccess, SyncHostCall } from './kernel.js'
export { ExtismKernel } from './kernel.js'
export { KernelMemory } from './kernel-memory.js'
export { isVarMethod, remoteVars } from './var-store.js'
