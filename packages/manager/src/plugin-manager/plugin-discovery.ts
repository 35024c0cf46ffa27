import { readdir, stat } from 'node:fs/promises'
import path from 'node:path'
import { checkHostVersion, loadManifest } from '@corral/manifest'
import type { Logger, Manifest } from '@corral/types'
import { isPluginError, PluginError } from '@corral/types'
import { describeExtismFolder, extismManifestFile, hasExtismManifest } from './self-described-sources.js'

/** One plugin source, as discovery found it: a manifest ready to load, or the reason it is not. */
export type DiscoveredPlugin =
  | { path: string; ok: true; manifest: Manifest; dir: string }
  | { path: string; ok: false; error: PluginError; name: string }

/**
 * Reads a bare `.wasm` file's description of itself: a manifest made from its registration
 * (`corral_register`). The manager provides it (it takes a WASM runner to run the module).
 */
export type WasmDescriber = (file: string) => Promise<Manifest>

/** Options of {@link discoverPlugins}. */
export interface DiscoveryOptions {
  pluginsDir?: string
  sources?: readonly { path: string }[]
  hostVersion: string
  describeWasm: WasmDescriber
  /** Where the notes on manifests written in GoatKit's form go, as warnings. */
  logger: Logger
}

/**
 * The form of a plugin name two sources may not share. The manifest schema admits only a-z, 0-9
 * and "-" today, so this changes nothing there; it keeps names that only look different (case,
 * Unicode compatibility forms) from naming two plugins if the schema ever admits more.
 */
export function pluginNameKey(name: string): string {
  return name.normalize('NFKC').toLowerCase()
}

/** Whether a path is a bare WASM module rather than a plugin folder. */
export function isBareWasm(source: string): boolean {
  return source.endsWith('.wasm')
}

/**
 * Reads one plugin source: a folder's `plugin.yaml` (or, without one, its Extism `manifest.json`),
 * or a bare `.wasm` file's own description, checked against this host's version. Never throws: a
 * bad source is reported. A `plugin.yaml` written in GoatKit's form loads, each of its notes logged
 * as a warning.
 */
export async function readPluginSource(
  source: string,
  hostVersion: string,
  describeWasm: WasmDescriber,
  logger: Logger,
): Promise<DiscoveredPlugin> {
  const resolved = path.resolve(source)
  try {
    const { manifest, dir, notes } = isBareWasm(resolved)
      ? { manifest: await describeWasm(resolved), dir: path.dirname(resolved), notes: [] }
      : (await hasExtismManifest(resolved))
        ? { manifest: await describeExtismFolder(resolved), dir: resolved, notes: [] }
        : await loadManifest(resolved)
    for (const note of notes) {
      logger.log('warn', `${note.field}: ${note.message}`, {
        plugin: manifest.name,
        manifest: path.join(dir, 'plugin.yaml'),
        ...(note.line === undefined ? {} : { line: note.line }),
      })
    }
    checkHostVersion(manifest, hostVersion)
    return { path: resolved, ok: true, manifest, dir }
  } catch (error) {
    return {
      path: resolved,
      ok: false,
      name: path.basename(resolved, '.wasm'),
      error: isPluginError(error) ? error : PluginError.from(error, 'load_failed'),
    }
  }
}

/**
 * Finds every plugin: each `<pluginsDir>/<name>/plugin.yaml` (or Extism `manifest.json`), each bare
 * `<pluginsDir>/*.wasm`, and each of `sources`. A bad plugin is reported, never fatal. Sources whose
 * plugins declare the same
 * name (after {@link pluginNameKey}) are all refused: a name is what policies, grants, data and
 * audit are keyed by, so no folder may take over another's.
 *
 * In the plugins folder, hidden entries (`.git`, `.cache`) and `node_modules` are not plugins, and a
 * folder with neither `plugin.yaml` nor `manifest.json` is skipped with a warning (notes, a build
 * folder, a plugin whose manifest is misnamed): it is no plugin to list as failed.
 */
export async function discoverPlugins(options: DiscoveryOptions): Promise<DiscoveredPlugin[]> {
  const paths = [
    ...(options.pluginsDir === undefined ? [] : await listPluginsDir(options.pluginsDir, options.logger)),
    ...(options.sources ?? []).map((source) => path.resolve(source.path)),
  ]
  const unique = [...new Set(paths)].sort()
  const found = await Promise.all(
    unique.map((source) =>
      readPluginSource(source, options.hostVersion, options.describeWasm, options.logger),
    ),
  )
  return nameFailuresApart(refuseDuplicateNames(found))
}

/** Whether an entry of the plugins folder can never be a plugin: hidden, or installed dependencies. */
export function isNeverPlugin(entryName: string): boolean {
  return entryName.startsWith('.') || entryName === 'node_modules'
}

/** Whether a folder holds a manifest: `plugin.yaml`, or an Extism `manifest.json`. */
async function hasManifest(dir: string): Promise<boolean> {
  const found = await Promise.all(
    ['plugin.yaml', extismManifestFile].map((file) =>
      stat(path.join(dir, file)).then(
        (s) => s.isFile(),
        () => false,
      ),
    ),
  )
  return found.includes(true)
}

/** The plugin folders and bare `.wasm` files of a plugins folder. */
async function listPluginsDir(pluginsDir: string, logger: Logger): Promise<string[]> {
  const entries = await readdir(pluginsDir, { withFileTypes: true })
  // A link counts as what it points to (a plugin under development is often linked in);
  // loadManifest still refuses entry paths that lead outside the folder the link points to.
  const kinds = await Promise.all(
    entries.map(async (entry) => {
      if (isNeverPlugin(entry.name)) return []
      const full = path.join(pluginsDir, entry.name)
      const target = entry.isSymbolicLink() ? await stat(full).catch(() => null) : entry
      if (target?.isDirectory()) {
        if (await hasManifest(full)) return [full]
        logger.log('warn', 'a folder of the plugins folder has no plugin.yaml (nor manifest.json): skipped', {
          folder: full,
        })
        return []
      }
      if (target?.isFile() && isBareWasm(entry.name)) return [full]
      return []
    }),
  )
  return kinds.flat()
}

/**
 * A failed source is listed by its folder's name: unless a good source declares that name (a broken
 * folder `hello` beside `hello-2` declaring `name: hello`), when it is listed by its path, so
 * that both are seen.
 */
function nameFailuresApart(found: DiscoveredPlugin[]): DiscoveredPlugin[] {
  const declared = new Set(found.flatMap((p) => (p.ok ? [pluginNameKey(p.manifest.name)] : [])))
  return found.map((p) => (!p.ok && declared.has(pluginNameKey(p.name)) ? { ...p, name: p.path } : p))
}

/** Turns every source whose plugin name another source also declares into a failure naming them all. */
function refuseDuplicateNames(found: DiscoveredPlugin[]): DiscoveredPlugin[] {
  const pathsByName = new Map<string, string[]>()
  for (const plugin of found) {
    if (!plugin.ok) continue
    const key = pluginNameKey(plugin.manifest.name)
    pathsByName.set(key, [...(pathsByName.get(key) ?? []), plugin.path])
  }
  return found.map((plugin): DiscoveredPlugin => {
    if (!plugin.ok) return plugin
    const paths = pathsByName.get(pluginNameKey(plugin.manifest.name)) ?? []
    if (paths.length < 2) return plugin
    const others = paths.filter((p) => p !== plugin.path).map((p) => path.basename(p))
    const error = new PluginError(
      'already_exists',
      `plugin name ${plugin.manifest.name} is also declared by ${others.join(', ')}; none of them is loaded`,
      { plugin: plugin.manifest.name },
    )
    return { path: plugin.path, ok: false, name: path.basename(plugin.path, '.wasm'), error }
  })
}
