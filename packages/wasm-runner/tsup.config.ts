import { defineConfig } from 'tsup'
import base from '../../tsup.config.base.js'

// The instance worker is its own entry: worker threads load it by file, next to index.js.
export default defineConfig({ ...base, entry: ['src/index.ts', 'src/instance-worker.ts'] })
