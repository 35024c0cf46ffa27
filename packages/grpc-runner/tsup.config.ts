import { defineConfig } from 'tsup'
import base from '../../tsup.config.base.js'

// `testing` is its own entry: fixtures and helpers for other packages' tests (`./testing`).
export default defineConfig({
  ...base,
  entry: { index: 'src/index.ts', 'testing/index': 'src/testing/index.ts' },
})
