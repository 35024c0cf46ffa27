import { defineProject } from 'vitest/config'

export default defineProject({ test: { name: 'grpc-runner', include: ['src/**/*.test.ts'] } })
