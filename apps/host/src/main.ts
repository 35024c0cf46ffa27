import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { discoverPlugins } from './discover-plugins.js'

/** The host's own version: what plugins' `min_host_version` ranges are checked against. */
const hostVersion = '0.1.0'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')
const pluginsDir = process.env.CORRAL_PLUGINS_DIR ?? path.join(root, 'examples/plugins')

const plugins = await discoverPlugins(pluginsDir, hostVersion)
console.log(`Corral host ${hostVersion}: ${plugins.length} plugin folders in ${pluginsDir}\n`)
for (const plugin of plugins) {
  if (!plugin.ok) {
    console.log(`✗ ${path.basename(plugin.dir)}: ${plugin.error.message}`)
    continue
  }
  const { manifest, grant } = plugin
  const requested =
    manifest.resources.permissions.map((p) => `${p.type}(${p.scope.join(',')})`).join(' ') || 'none'
  console.log(`✓ ${manifest.name} ${manifest.version} [${manifest.runtime}] ${manifest.description ?? ''}`)
  console.log(`    requests: ${requested}`)
  console.log(
    `    granted under '${grant.status}': ${grant.permissions.length} permissions, ${grant.limits.memory_mb} MiB, ` +
      `${grant.limits.call_timeout} ms per call`,
  )
}
const failed = plugins.filter((p) => !p.ok).length
if (failed > 0) process.exitCode = 1
