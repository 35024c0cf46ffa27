import type { PluginIdentity } from '@corral/types'
import { PluginError } from '@corral/types'
import semver from 'semver'

/**
 * Fails with `incompatible`, naming both versions, when the host's version does not satisfy the
 * plugin's `min_host_version` range.
 */
export function checkHostVersion(plugin: PluginIdentity, hostVersion: string): void {
  const range = plugin.min_host_version
  if (range === undefined) return
  if (semver.valid(hostVersion) === null) {
    throw new PluginError('invalid_argument', `host version ${JSON.stringify(hostVersion)} is not semver`)
  }
  if (!semver.satisfies(hostVersion, range, { includePrerelease: true })) {
    throw new PluginError(
      'incompatible',
      `${plugin.name} ${plugin.version} needs host ${range}, but this host is ${hostVersion}`,
      { plugin: plugin.name },
    )
  }
}
