import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    projects: ['proto', 'packages/*', 'apps/*', 'bench', 'docs'],
    reporters: ['default', './scripts/summary-reporter.ts'],
  },
})
