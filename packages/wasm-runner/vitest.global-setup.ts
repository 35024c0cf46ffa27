import { fileURLToPath } from 'node:url'
import { build } from 'tsup'

/**
 * Instance workers load a JavaScript file, not the TypeScript sources vitest runs: bundle the
 * worker into dist/ (as the build would) before the tests start, so they always run the current code.
 */
export default async function setup(): Promise<void> {
  await build({
    entry: { worker: fileURLToPath(new URL('./src/worker/worker.ts', import.meta.url)) },
    format: ['esm'],
    outDir: fileURLToPath(new URL('./dist', import.meta.url)),
    target: 'node20',
    dts: false,
    clean: false,
    silent: true,
  })
}
