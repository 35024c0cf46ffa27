import { defineProject } from 'vitest/config'

export default defineProject({
  test: {
    name: 'cli',
    include: ['src/**/*.test.ts'],
    // The integration tests build plugins (AssemblyScript, esbuild, clang, Go) and start them.
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
})
