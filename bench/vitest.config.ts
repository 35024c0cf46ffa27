import { defineProject } from 'vitest/config'

// The harness's own logic only: the benchmarks themselves run through `pnpm bench`, never as tests.
export default defineProject({ test: { name: 'bench', include: ['src/**/*.test.ts'] } })
