import { defineProject } from 'vitest/config'

// The code blocks are compiled and run in batches before the tests report on them one by one.
export default defineProject({
  test: { name: 'docs', include: ['test/**/*.test.ts'], testTimeout: 30_000, hookTimeout: 120_000 },
})
