import { defineProject } from 'vitest/config'

export default defineProject({
  // The C header's test compiles its probe with clang before it starts.
  // Its type tests (*.test-d.ts) are checked by tsc, as part of the run.
  test: {
    name: 'plugin-sdk',
    include: ['src/**/*.test.ts'],
    typecheck: { enabled: true, include: ['src/**/*.test-d.ts'] },
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
})
