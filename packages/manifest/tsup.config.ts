import { defineConfig } from 'tsup'
import base from '../../tsup.config.base.js'

// The scope globs are their own entry too: a process that only matches globs (the SQLite executor)
// need not load the schemas.
export default defineConfig({ ...base, entry: { index: 'src/index.ts', 'scope-glob': 'src/scope-glob.ts' } })
