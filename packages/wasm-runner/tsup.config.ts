import { defineConfig } from 'tsup'
import base from '../../tsup.config.base.js'

// The instance worker is its own entry: worker threads load it by file, next to index.js.
export default defineConfig({
  ...base,
  entry: {
    index: 'src/index.ts',
    'instance-worker': 'src/instance-worker.ts',
    testing: 'src/testing/index.ts',
  },
})
