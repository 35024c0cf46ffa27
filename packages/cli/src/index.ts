export { createProgram } from './cli-program.js'
export type { PolicyInput } from './requested-policy.js'
export { requestedPolicy } from './requested-policy.js'
