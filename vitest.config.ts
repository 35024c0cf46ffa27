import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    projects: ['proto', 'packages/*', 'apps/*', 'docs'],
    reporters: ['default', './scripts/summary-reporter.ts'],
  },
})
