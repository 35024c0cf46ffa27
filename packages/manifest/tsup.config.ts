import { defineConfig } from 'tsup'
import base from '../../tsup.config.base.js'

// The scope globs and the inside-folder check are their own entries too: a process that only needs
// them (the SQLite executor, a WASM worker) need not load the schemas.
export default defineConfig({
  ...base,
  entry: {
    index: 'src/index.ts',
    'scope-glob': 'src/scope-glob.ts',
    'inside-folder': 'src/inside-folder.ts',
  },
})
