export { checkHostVersion } from './host-version.js'
export type { LoadedManifest, ParsedManifest, ParseManifestOptions } from './parse-manifest.js'
export {
  checkManifestPaths,
  loadManifest,
  maxManifestBytes,
  parseManifest,
  parseManifestWithNotes,
} from './parse-manifest.js'
export type { ParsePoliciesOptions } from './parse-policies.js'
export { loadPolicies, parsePolicies } from './parse-policies.js'
export { parsePolicy } from './parse-policy.js'
export { parseRegistration, parseRegistrationJson, registrationFromManifest } from './parse-registration.js'
export { defaultLimits, defaultPolicy, defaultRateLimits, effectiveGrant } from './policy.js'
export { validateConfig } from './validate-config.js'

// Symbols below are for other Corral packages (the manager, the runners, the demo host).

export { parseDuration } from './duration.js'
export { isInsideFolder } from './inside-folder.js'
export { manifestSchema, pluginNamePattern, pluginNameRule, registrationSchema } from './schema.js'
export { intersectScopes, matchAnyScope, matchScope, scopeCovers } from './scope-glob.js'
