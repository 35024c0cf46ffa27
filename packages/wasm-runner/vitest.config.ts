import { defineProject } from 'vitest/config'

export default defineProject({
  test: {
    name: 'wasm-runner',
    include: ['src/**/*.test.ts'],
    globalSetup: ['./vitest.global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
})
