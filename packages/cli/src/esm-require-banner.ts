/**
 * The first line of an ESM bundle of a Node.js plugin: CommonJS dependencies (gRPC) call require()
 * for Node's modules, so the bundle gets one. A global, set once, declares nothing, so a bundle can
 * be bundled again (`corral pack` of a build). The example plugins' build uses it too.
 */
export const esmRequireBanner =
  "globalThis.require ??= process.getBuiltinModule('node:module').createRequire(import.meta.url);"
