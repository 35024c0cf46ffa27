import { defineConfig } from 'tsup'
import base from '../../tsup.config.base.js'

// The SQLite executor is its own entry: the executor processes are started from its file, next to index.js.
// `./testing` (other packages' tests) imports vitest, a development dependency, rather than bundling it.
export default defineConfig({
  ...base,
  external: ['vitest'],
  entry: {
    index: 'src/index.ts',
    'sqlite-executor': 'src/backends/sqlite-executor.ts',
    testing: 'src/testing/index.ts',
  },
})
