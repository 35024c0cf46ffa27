import { build } from 'esbuild'
import { esmRequireBanner } from './esm-require-banner.js'
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
    banner: { js: esmRequireBanner },
  })
}
