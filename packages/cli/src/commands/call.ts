import type { Manifest } from '@corral/types'
import { PluginError } from '@corral/types'
import { cliLogger, formatJson } from '../output.js'
import { resolvePluginFolder } from '../plugin-folder.js'
import { openPluginSession } from '../plugin-session.js'

/** Options of `corral call`. */
export interface CallOptions {
  args?: string
  policy?: string
  verbose?: boolean
}

/** The `--args` JSON; undefined when there is none (see {@link callArgs}). */
export function parseArgs(text: string | undefined): unknown {
  if (text === undefined) return undefined
  try {
    return JSON.parse(text)
  } catch (cause) {
    throw new PluginError('invalid_argument', `--args is not JSON: ${(cause as Error).message}`, { cause })
  }
}

/**
 * What a call sends: the `--args` given or, without them, `{}` to a plugin whose functions take
 * JSON and no input at all to an Extism plugin, whose functions read bytes (`{}` would be the
 * text `{}`; `null` is how a call says "no input" to one).
 */
export function callArgs(manifest: Manifest, given: unknown): unknown {
  if (given !== undefined) return given
  return manifest.wasm?.extism === undefined ? {} : null
}

/**
 * `corral call <dir> <fn>`: loads the plugin under a policy (default: exactly what it requests,
 * approved) in a host of its own, calls `fn` once, and prints the result as JSON.
 */
export async function callCommand(dir: string, fn: string, options: CallOptions): Promise<void> {
  const args = parseArgs(options.args)
  const session = await openPluginSession({
    dir: await resolvePluginFolder(dir),
    policyFile: options.policy,
    logger: cliLogger(options.verbose === true),
  })
  try {
    const result = await session.manager.call(session.manifest.name, fn, callArgs(session.manifest, args))
    process.stdout.write(`${formatJson(result)}\n`)
  } finally {
    await session.close()
  }
}
