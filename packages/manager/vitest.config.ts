import { defineProject } from 'vitest/config'

export default defineProject({
  test: {
    name: 'manager',
    include: ['src/**/*.test.ts'],
    // One PostgreSQL and one Redis server for the whole run, on loopback, stopped afterwards.
    globalSetup: ['src/testing/servers.global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
})
