// What other packages' tests use of the manager's test support (the `./testing` subpath). Only for
// this repository's tests, which run under the servers of `servers.global-setup.ts`.
export { freshPostgresDatabase } from './backend-sets.js'
