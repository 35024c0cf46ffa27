import { stat } from 'node:fs/promises'
import path from 'node:path'
import { PluginError } from '@corral/types'

/**
 * The plugin folder a command was given: the folder itself, or the folder of the `plugin.yaml`
 * named (every command takes either). Fails with `not_found` for a path that is not there, and
 * with `invalid_argument` for a file other than a `plugin.yaml`.
 *
 * @example
 * await resolvePluginFolder('greeter/plugin.yaml')   // → /home/ada/greeter
 */
export async function resolvePluginFolder(given: string): Promise<string> {
  const resolved = path.resolve(given)
  const found = await stat(resolved).catch((cause: NodeJS.ErrnoException) => {
    const why = cause.code === 'ENOENT' ? 'there is no such folder' : cause.message
    throw new PluginError('not_found', `cannot find plugin folder ${resolved}: ${why}`, { cause })
  })
  if (found.isDirectory()) return resolved
  if (path.basename(resolved) === 'plugin.yaml') return path.dirname(resolved)
  throw new PluginError(
    'invalid_argument',
    `${resolved} is a file: give the plugin's folder, or its plugin.yaml`,
  )
}
