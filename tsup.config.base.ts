import { defineConfig } from 'tsup'

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
