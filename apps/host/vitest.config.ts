import { defineProject } from 'vitest/config'

export default defineProject({
  test: {
    name: 'host',
    include: ['src/**/*.test.ts'],
    // The manager's private PostgreSQL and Redis servers, for the replica tests; stopped afterwards.
    globalSetup: ['../../packages/manager/src/testing/servers.global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
})
