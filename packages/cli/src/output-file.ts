import { constants } from 'node:fs'
import { access, stat } from 'node:fs/promises'
import path from 'node:path'
import { PluginError } from '@corral/types'

/**
 * Fails with a coded error when `file` cannot be written: its folder is not there (`not_found`)
 * or not writable (`permission_denied`), it is a folder (`invalid_argument`), or it exists and
 * must not be replaced (`already_exists`). Checked before a command starts its work, so that it
 * does not fail, or print ✓, half-way.
 */
export async function checkOutputFile(file: string, options: { replace: boolean }): Promise<void> {
  const folder = path.dirname(file)
  const folderStat = await stat(folder).catch(() => undefined)
  if (folderStat?.isDirectory() !== true) {
    throw new PluginError('not_found', `cannot write ${file}: there is no folder ${folder}`)
  }
  await access(folder, constants.W_OK).catch((cause: Error) => {
    throw new PluginError('permission_denied', `cannot write ${file}: ${cause.message}`, { cause })
  })
  const existing = await stat(file).catch(() => undefined)
  if (existing?.isDirectory())
    throw new PluginError('invalid_argument', `cannot write ${file}: it is a folder`)
  if (existing !== undefined && !options.replace)
    throw new PluginError('already_exists', `${file} already exists`)
}
