// The smallest SDK plugin, run by serve.int.test.ts from the built package.
import { definePlugin, serve } from '../../dist/index.js'

await serve(
  definePlugin({
    functions: { echo: (args) => args },
  }),
)
