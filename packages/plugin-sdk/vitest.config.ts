import { defineProject } from 'vitest/config'

export default defineProject({
  // The C header's test compiles its probe with clang before it starts.
  test: { name: 'plugin-sdk', include: ['src/**/*.test.ts'], testTimeout: 30_000, hookTimeout: 60_000 },
})
