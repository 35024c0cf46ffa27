import { loadManifest } from '@corral/manifest'
import { stringify } from 'yaml'
import { resolvePluginFolder } from '../plugin-folder.js'
import { requestedPolicy } from '../requested-policy.js'

/** `corral policy [dir]`: prints the YAML policy that grants exactly what the plugin requests. */
export async function policyCommand(dir: string): Promise<void> {
  const { manifest } = await loadManifest(await resolvePluginFolder(dir))
  process.stdout.write(
    `# The policy granting ${manifest.name} exactly what its plugin.yaml requests.\n${stringify(requestedPolicy(manifest))}`,
  )
}
