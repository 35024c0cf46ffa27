import { defineConfig } from 'tsup'
import { esmRequireBanner } from './packages/cli/src/esm-require-banner.js'

/** The one build every Corral package uses: ESM, declarations, Node 20, public types free of Node globals. */
export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm'],
  dts: true,
  tsconfig: 'tsconfig.build.json',
  sourcemap: true,
  clean: true,
  target: 'node20',
})

/**
 * The build of the TypeScript example plugins: `src/main.ts` bundled with every dependency into
 * `dist/main.js`, as `corral build` bundles a user's plugin (packages/cli/src/node-bundle.ts). A
 * plugin starts from one file, not from hundreds of modules resolved and loaded one by one.
 */
export const pluginBundle = defineConfig({
  entry: ['src/main.ts'],
  format: ['esm'],
  platform: 'node',
  target: 'node20',
  noExternal: [/./],
  banner: { js: esmRequireBanner },
  sourcemap: true,
  clean: true,
})
