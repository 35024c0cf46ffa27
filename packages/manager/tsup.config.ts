import { defineConfig } from 'tsup'
import base from '../../tsup.config.base.js'

// The SQLite executor is its own entry: the executor processes are started from its file, next to index.js.
export default defineConfig({
  ...base,
  entry: { index: 'src/index.ts', 'sqlite-executor': 'src/backends/sqlite-executor.ts' },
})
