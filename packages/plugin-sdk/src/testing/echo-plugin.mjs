// The smallest SDK plugin, run by serve.int.test.ts from the built package.
import { definePlugin, serve } from '../../dist/index.js'

await serve(
  definePlugin({
    register: { name: 'echo', version: '0.1.0' },
    functions: { echo: (args) => args },
  }),
)
