import { defineConfig } from 'tsup'
import base from '../../tsup.config.base.js'

// Three entries: the public one, `./internal` for sibling packages, `./testing` for other packages' tests.
export default defineConfig({
  ...base,
  entry: { index: 'src/index.ts', internal: 'src/internal.ts', 'testing/index': 'src/testing/index.ts' },
})
