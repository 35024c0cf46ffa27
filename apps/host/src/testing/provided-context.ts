import type {} from 'vitest'

// What the manager's servers global set-up provides to the host's tests.
declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string
    redisUrl: string
  }
}
