import { build } from 'esbuild'
import { sdkModulesDir } from './toolchain.js'

/**
 * Bundles a Node.js plugin entry with every dependency into one ESM file, so that the plugin's
 * folder runs wherever it is copied. Dependencies the plugin's folder lacks are looked up beside the
 * CLI: `@corral/plugin-sdk`, zod (the `grpc-ts` template's schemas) and what they use.
 */
export async function bundleNodeEntry(input: string, outfile: string): Promise<void> {
  await build({
    entryPoints: [input],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    nodePaths: [sdkModulesDir()],
    logLevel: 'silent',
    // CommonJS dependencies (gRPC) call require() for Node's modules: give the ESM bundle one. A
    // global, set once, declares nothing, so a bundle can be bundled again (`corral pack` of a build).
    banner: {
      js: "globalThis.require ??= process.getBuiltinModule('node:module').createRequire(import.meta.url);",
    },
  })
}
