import { defineConfig } from 'tsup'
import base from '../../tsup.config.base.js'

// The worker is its own entry: worker threads load it by file, next to index.js. `./testing`
// (Corral's own tests) imports wabt, a development dependency, rather than bundling it.
export default defineConfig({
  ...base,
  external: ['wabt'],
  entry: {
    index: 'src/index.ts',
    extism: 'src/extism-drop-in/index.ts',
    worker: 'src/worker/worker.ts',
    testing: 'src/testing/index.ts',
  },
})
