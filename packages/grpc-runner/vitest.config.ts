import { defineProject } from 'vitest/config'

// Integration tests start real plugin processes on a shared 2-core machine: generous timeouts.
export default defineProject({
  test: { name: 'grpc-runner', include: ['src/**/*.test.ts'], testTimeout: 30_000, hookTimeout: 30_000 },
})
