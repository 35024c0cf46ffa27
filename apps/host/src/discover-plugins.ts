import { readdir, stat } from 'node:fs/promises'
import path from 'node:path'
import { checkHostVersion, loadManifest } from '@corral/manifest'
import type { Manifest } from '@corral/types'
import { isPluginError, PluginError } from '@corral/types'

/** One plugin folder, as discovery found it: a manifest ready to load, or the reason it is not. */
export type DiscoveredPlugin =
  | { dir: string; ok: true; manifest: Manifest }
  | { dir: string; ok: false; error: PluginError }

/**
 * Reads every `<pluginsDir>/<name>/plugin.yaml` and checks it against this host's version.
 * A bad plugin is reported, never fatal.
 */
export async function discoverPlugins(pluginsDir: string, hostVersion: string): Promise<DiscoveredPlugin[]> {
  const entries = await readdir(pluginsDir, { withFileTypes: true })
  // A link to a folder counts as a plugin folder (a plugin under development is often linked in);
  // loadManifest still refuses entry paths that lead outside the folder the link points to.
  const isFolder = async (entry: (typeof entries)[number]) =>
    entry.isDirectory() ||
    (entry.isSymbolicLink() &&
      (await stat(path.join(pluginsDir, entry.name)).catch(() => null))?.isDirectory() === true)
  const folders = await Promise.all(entries.map(async (e) => ((await isFolder(e)) ? [e.name] : [])))
  const dirs = folders.flat().map((name) => path.join(pluginsDir, name))
  return Promise.all(
    dirs.sort().map(async (dir): Promise<DiscoveredPlugin> => {
      try {
        const { manifest } = await loadManifest(dir)
        checkHostVersion(manifest, hostVersion)
        return { dir, ok: true, manifest }
      } catch (error) {
        return { dir, ok: false, error: isPluginError(error) ? error : PluginError.from(error) }
      }
    }),
  )
}
