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
 * The form of a plugin name two folders may not share. The manifest schema admits only a-z, 0-9
 * and "-" today, so this changes nothing there; it keeps names that only look different (case,
 * Unicode compatibility forms) from naming two plugins if the schema ever admits more.
 */
export function pluginNameKey(name: string): string {
  return name.normalize('NFKC').toLowerCase()
}

/**
 * Reads every `<pluginsDir>/<name>/plugin.yaml` and checks it against this host's version.
 * A bad plugin is reported, never fatal. Folders whose manifests declare the same name (after
 * {@link pluginNameKey}) are all refused: a name is what policies, grants, data and audit are
 * keyed by, so no folder may take over another's.
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
  const found = await Promise.all(
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
  return refuseDuplicateNames(found)
}

/** Turns every folder whose plugin name another folder also declares into a failure naming them all. */
function refuseDuplicateNames(found: DiscoveredPlugin[]): DiscoveredPlugin[] {
  const dirsByName = new Map<string, string[]>()
  for (const plugin of found) {
    if (!plugin.ok) continue
    const key = pluginNameKey(plugin.manifest.name)
    dirsByName.set(key, [...(dirsByName.get(key) ?? []), plugin.dir])
  }
  return found.map((plugin) => {
    if (!plugin.ok) return plugin
    const dirs = dirsByName.get(pluginNameKey(plugin.manifest.name)) ?? []
    if (dirs.length < 2) return plugin
    const others = dirs.filter((dir) => dir !== plugin.dir).map((dir) => path.basename(dir))
    const error = new PluginError(
      'already_exists',
      `plugin name ${plugin.manifest.name} is also declared by ${others.join(', ')}; none of them is loaded`,
      { plugin: plugin.manifest.name },
    )
    return { dir: plugin.dir, ok: false, error }
  })
}
