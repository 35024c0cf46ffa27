import type {} from 'vitest'

// What `servers.global-setup.ts` provides to the tests: its servers' URLs.
declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string
    redisUrl: string
  }
}
