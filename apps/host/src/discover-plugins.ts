import { readdir } from 'node:fs/promises'
import path from 'node:path'
import { checkHostVersion, defaultPolicy, effectiveGrant, loadManifest } from '@corral/manifest'
import type { EffectiveGrant, Manifest } from '@corral/types'
import { isPluginError, PluginError } from '@corral/types'

/** One plugin folder, as discovery found it: ready to load, or refused with the reason. */
export type DiscoveredPlugin =
  | { dir: string; ok: true; manifest: Manifest; grant: EffectiveGrant }
  | { dir: string; ok: false; error: PluginError }

/**
 * Reads every `<pluginsDir>/<name>/plugin.yaml`, checks it against this host's version and resolves
 * its grant under the default (pending review) policy. A bad plugin is reported, never fatal.
 */
export async function discoverPlugins(pluginsDir: string, hostVersion: string): Promise<DiscoveredPlugin[]> {
  const entries = await readdir(pluginsDir, { withFileTypes: true })
  const dirs = entries.filter((e) => e.isDirectory()).map((e) => path.join(pluginsDir, e.name))
  return Promise.all(
    dirs.sort().map(async (dir): Promise<DiscoveredPlugin> => {
      try {
        const { manifest } = await loadManifest(dir)
        checkHostVersion(manifest, hostVersion)
        return {
          dir,
          ok: true,
          manifest,
          grant: effectiveGrant(manifest.resources, defaultPolicy(manifest.name)),
        }
      } catch (error) {
        return { dir, ok: false, error: isPluginError(error) ? error : PluginError.from(error) }
      }
    }),
  )
}
