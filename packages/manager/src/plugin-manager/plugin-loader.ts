import { effectiveGrant, validateConfig } from '@corral/manifest'
import type { HostCallHandler, Manifest, PluginRuntime, ResourcePolicy, Runner } from '@corral/types'
import { PluginError } from '@corral/types'
import type { WasmLoadOptions } from '@corral/wasm-runner'
import type { ExtismHostFunctions } from '@corral/wasm-runner/extism'
import type { CallerVersion } from '../host-api/sandboxed-host-api.js'
import { PluginVersion } from './plugin-version.js'

/** What loading one version of a plugin needs. */
export interface PluginLoaderOptions {
  runners: Readonly<Record<PluginRuntime, Runner>>
  /** The host API of one version: its host calls are checked against its own request and config. */
  hostApiFor: (plugin: string, version: CallerVersion) => HostCallHandler
  /** The host's per-plugin config, laid over the manifest's defaults. */
  config?: (plugin: string) => Record<string, unknown> | undefined
  /** The Extism user host functions a plugin may import; the WASM runner takes them. */
  extismFunctions?: (plugin: string) => ExtismHostFunctions | undefined
  /** Checks the plugin's source (folder or `.wasm`) before anything of it runs (signatures); rejects to refuse it. */
  verify?: (source: string) => Promise<void>
}

/**
 * Loads, registers and initialises one version of a plugin under the grant its policy gives it.
 * Nothing is left running when it fails: the loaded plugin is shut down before the error goes up.
 */
export async function loadPluginVersion(
  options: PluginLoaderOptions,
  found: { manifest: Manifest; dir: string; path: string },
  policy: ResourcePolicy,
): Promise<PluginVersion> {
  const { manifest, dir } = found
  const name = manifest.name
  try {
    await options.verify?.(found.path)
    const grant = effectiveGrant(manifest.resources, policy)
    const config = validateConfig(manifest, options.config?.(name))
    // A runner other than the WASM one has no use for the Extism functions.
    const load: WasmLoadOptions = {
      manifest,
      dir,
      grant,
      hostApi: options.hostApiFor(name, { request: manifest.resources, config }),
    }
    const extismFunctions = manifest.runtime === 'wasm' ? options.extismFunctions?.(name) : undefined
    if (extismFunctions !== undefined) load.extismFunctions = extismFunctions
    const plugin = await options.runners[manifest.runtime].load(load)
    try {
      const registration = await plugin.register()
      await plugin.init(config)
      return new PluginVersion({ plugin, manifest, dir, registration, config, grant })
    } catch (error) {
      await plugin.shutdown().catch(() => {})
      throw error
    }
  } catch (error) {
    throw PluginError.from(error, 'load_failed', name)
  }
}
