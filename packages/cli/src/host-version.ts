import { readFileSync } from 'node:fs'

/**
 * The Corral version this CLI hosts plugins as (what `min_host_version` is checked against): the
 * CLI's own, released together with the manager.
 */
export const hostVersion: string = JSON.parse(
  readFileSync(new URL('../package.json', import.meta.url), 'utf8'),
).version
