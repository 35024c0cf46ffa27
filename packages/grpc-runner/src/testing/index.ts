// What other packages' tests use to run fixture and example plugins under the gRPC runner. Only for
// this repository's tests: the fixtures are read from this package's sources, which are not published.
export type { TestPolicy } from './support.js'
export {
  bareFixturePolicy,
  eventually,
  examplePlugin,
  fixtureManifest,
  fixturesDir,
  grantFor,
  memoryLogger,
  nextState,
  processExists,
  processesWithCommandLine,
  recordingHost,
} from './support.js'
