import { defineProject } from 'vitest/config'

export default defineProject({ test: { name: 'plugin-sdk', include: ['src/**/*.test.ts'] } })
