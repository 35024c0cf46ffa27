import {
  type Backends,
  createBackends,
  createPluginManager,
  type PluginInfo,
  type PluginManager,
} from '@corral/manager'
import { loadManifest, loadPolicies, parsePolicy } from '@corral/manifest'
import type { Logger, Manifest, ResourcePolicy } from '@corral/types'
import { PluginError } from '@corral/types'
import { hostVersion } from './host-version.js'
import { requestedPolicy } from './requested-policy.js'

/** Options of {@link openPluginSession}. */
export interface PluginSessionOptions {
  /** The plugin's folder. */
  dir: string
  /**
   * A YAML (or JSON) policies file, one policy or a list: the one for this plugin is used.
   * Default: exactly what the manifest requests, approved.
   */
  policyFile?: string
  logger: Logger
}

/** One plugin running in a host of its own: the real runners and the sandboxed host API on embedded backends. */
export interface PluginSession {
  /** The plugin's manifest, as its last load or reload read it. */
  readonly manifest: Manifest
  manager: PluginManager
  /**
   * Loads the plugin's folder again beside the running version and swaps them (see
   * {@link PluginManager.reload}). `manifest` is its `plugin.yaml` as it reads now: without a policy
   * file, the plugin is granted what that manifest requests, so a permission added there is granted.
   */
  reload(manifest: Manifest): Promise<PluginInfo>
  /** Stops the plugin and removes the temporary database. */
  close(): Promise<void>
}

/** The file a plugin's manifest names as its entry (what its build makes). */
export function entryPath(manifest: Manifest): string {
  const entry = manifest.entry
  return 'wasm' in entry ? entry.wasm : 'binary' in entry ? entry.binary : entry.node
}

/** The policy of a policies file for `plugin`: the file may hold others, not none for it. */
async function policyFromFile(file: string, plugin: string): Promise<ResourcePolicy> {
  const policies = await loadPolicies(file)
  const policy = policies.find((p) => p.plugin === plugin)
  if (policy === undefined) {
    const others = policies.length === 0 ? 'none' : policies.map((p) => p.plugin).join(', ')
    throw new PluginError('invalid_argument', `${file} has no policy for ${plugin} (it has: ${others})`)
  }
  return policy
}

/**
 * Starts a plugin manager with this one plugin (SQLite in a temporary file, an in-memory cache,
 * in-process events) and waits until the plugin runs; a plugin that does not is its error.
 */
export async function openPluginSession(options: PluginSessionOptions): Promise<PluginSession> {
  const loaded = await loadManifest(options.dir)
  const dir = loaded.dir
  let manifest = loaded.manifest
  const policy =
    options.policyFile === undefined
      ? parsePolicy(requestedPolicy(manifest))
      : await policyFromFile(options.policyFile, manifest.name)
  const backends: Backends = await createBackends()
  const manager = createPluginManager({
    sources: [{ path: dir }],
    hostVersion,
    backends,
    policies: [policy],
    logger: options.logger,
    jobs: false,
  })
  const close = async () => {
    await manager.close()
    await backends.close()
  }
  try {
    await manager.start()
    // The one source: listed under the plugin's name, or under its folder's when discovery refused
    // it (an incompatible min_host_version, say), which manager.get(manifest.name) would miss.
    const [info] = manager.list()
    if (info?.state !== 'running') {
      throw info?.lastError === undefined
        ? new PluginError('load_failed', `${manifest.name} is ${info?.state ?? 'not loaded'}`)
        : PluginError.from(info.lastError, 'load_failed')
    }
  } catch (error) {
    await close()
    throw error
  }
  const reload = async (next: Manifest) => {
    // Stored before the reload, which loads the new version under the stored policy; should the
    // reload fail, the version still serving gets no more than its own manifest requested.
    if (options.policyFile === undefined) await manager.setPolicy(requestedPolicy(next), { by: 'corral dev' })
    // By the name it runs under: a manifest that names another plugin now fails the reload, saying so.
    const reloaded = await manager.reload(manifest.name)
    manifest = next
    return reloaded
  }
  return {
    get manifest() {
      return manifest
    },
    manager,
    reload,
    close,
  }
}
