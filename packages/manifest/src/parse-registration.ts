import type { FieldError, Manifest, Permission, PluginIdentity, Registration } from '@corral/types'
import { PluginError } from '@corral/types'
import { fieldErrorsFromIssues, formatFieldErrors } from './field-errors.js'
import { registrationSchema } from './schema.js'
import { scopeCovers } from './scope-glob.js'

/** Whether some requested permission allows everything `claimed` does. */
function isRequested(claimed: Permission, requested: readonly Permission[]): boolean {
  return requested.some(
    (r) =>
      r.type === claimed.type &&
      claimed.access.every((a) => r.access.includes(a)) &&
      claimed.scope.every((s) => r.scope.some((rs) => scopeCovers(rs, s))),
  )
}

/** Who the manifest says the plugin is: its name, version, and the other identity fields it has. */
function identityOf(manifest: Manifest): PluginIdentity {
  const identity: PluginIdentity = { name: manifest.name, version: manifest.version }
  for (const key of optionalIdentityFields) {
    const value = manifest[key]
    if (value !== undefined) identity[key] = value
  }
  return identity
}

const optionalIdentityFields = [
  'description',
  'author',
  'license',
  'homepage',
  'min_host_version',
] as const satisfies readonly (keyof PluginIdentity & keyof Manifest)[]

/**
 * Validates what a plugin's `register()` returned against the registration schema and its manifest.
 * The identity a registration leaves out is the manifest's (a plugin need not repeat its
 * `plugin.yaml`), and so is every list it leaves out (empty); a name or version it does give must be
 * the manifest's, and it may claim no permission beyond what the manifest requests. Fails with
 * `load_failed` listing every problem.
 */
export function parseRegistration(value: unknown, manifest: Manifest): Registration {
  const fail = (fields: FieldError[]) => {
    const list = formatFieldErrors(fields)
    return new PluginError('load_failed', `register() returned an invalid registration:\n${list}`, {
      plugin: manifest.name,
      fields,
    })
  }
  const declared = typeof value === 'object' && value !== null && !Array.isArray(value)
  const result = registrationSchema.safeParse(declared ? { ...identityOf(manifest), ...value } : value)
  if (!result.success) throw fail(fieldErrorsFromIssues(result.error.issues, registrationSchema))
  const registration = result.data
  const fields: FieldError[] = []
  if (registration.name !== manifest.name) {
    fields.push({ field: 'name', message: `is ${registration.name}, but the manifest says ${manifest.name}` })
  }
  if (registration.version !== manifest.version) {
    fields.push({
      field: 'version',
      message: `is ${registration.version}, but the manifest says ${manifest.version}`,
    })
  }
  registration.permissions.forEach((perm, i) => {
    if (!isRequested(perm, manifest.resources.permissions)) {
      fields.push({
        field: `permissions[${i}]`,
        message: `${perm.type} on ${perm.scope.join(', ')} is not requested by the manifest`,
      })
    }
  })
  if (fields.length > 0) throw fail(fields)
  return registration
}

const utf8 = new TextDecoder()

/**
 * {@link parseRegistration} of the JSON bytes a plugin's `register()` answered with (none is
 * `null`): the same for every runtime, so bytes that are not JSON fail as any invalid registration
 * does, with `load_failed` naming the plugin.
 */
export function parseRegistrationJson(json: Uint8Array | null | undefined, manifest: Manifest): Registration {
  let value: unknown = null
  if (json !== null && json !== undefined && json.length > 0) {
    try {
      value = JSON.parse(utf8.decode(json))
    } catch (error) {
      throw new PluginError('load_failed', 'register() returned a registration that is not JSON', {
        plugin: manifest.name,
        cause: error,
      })
    }
  }
  return parseRegistration(value, manifest)
}

/** The registration of a plugin that does not describe itself: its manifest's identity and `provides`. */
export function registrationFromManifest(manifest: Manifest): Registration {
  const { provides = {} } = manifest
  return parseRegistration({ ...provides, permissions: manifest.resources.permissions }, manifest)
}
