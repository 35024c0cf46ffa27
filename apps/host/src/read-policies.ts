import { readFile } from 'node:fs/promises'
import { parsePolicy } from '@corral/manifest'
import type { ResourcePolicy } from '@corral/types'
import { PluginError } from '@corral/types'
import { parse } from 'yaml'

/** Reads a YAML list of policies, each validated with `parsePolicy` (`invalid_argument` names the entry). */
export async function readPolicies(file: string): Promise<ResourcePolicy[]> {
  const entries: unknown = parse(await readFile(file, 'utf8'))
  if (!Array.isArray(entries)) throw new PluginError('invalid_argument', `${file} must be a list of policies`)
  return entries.map((entry, i) => {
    try {
      return parsePolicy(entry)
    } catch (error) {
      throw new PluginError(
        'invalid_argument',
        `${file}, policy ${i + 1}: ${PluginError.from(error).rawMessage}`,
        {
          cause: error,
        },
      )
    }
  })
}
