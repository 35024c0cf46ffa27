import path from 'node:path'
import { watch } from 'chokidar'
import { cliLogger, errorColors, formatError, formatJson } from '../output.js'
import { resolvePluginFolder } from '../plugin-folder.js'
import { entryPath, openPluginSession, type PluginSession } from '../plugin-session.js'
import { buildPlugin } from './build.js'
import { callArgs, parseArgs } from './call.js'

/** Options of `corral dev`. */
export interface DevOptions {
  call?: string
  args?: string
  policy?: string
  verbose?: boolean
}

/**
 * Paths where no source lives, and, for a plugin with a build step, the paths its build writes: a
 * change there starts nothing. A plugin without a build step is reloaded when its entry changes.
 */
function isIgnored(dir: string, entry: string, builds: boolean) {
  const ignored = new Set(['node_modules', '.git', 'plugin.sig'])
  if (builds) for (const output of ['build', 'dist', path.dirname(entry)]) ignored.add(output)
  return (file: string) => {
    const relative = path.relative(dir, file)
    const top = relative.split(path.sep)[0] ?? ''
    return (builds && relative === entry) || ignored.has(top)
  }
}

/**
 * `corral dev <dir>`: builds the plugin, runs it in a host of its own, and on every change of its
 * folder rebuilds it and, once the build has succeeded, reloads it (one edit, one reload, of the
 * rebuilt plugin; a failed build or reload leaves the running version serving), then calls
 * `--call`, printing what it answers. Runs until interrupted.
 */
export async function devCommand(dir: string, options: DevOptions): Promise<void> {
  const folder = await resolvePluginFolder(dir)
  const args = parseArgs(options.args)
  const logger = cliLogger(options.verbose === true)
  const build = () => buildPlugin(folder, true)
  const builds = await build()

  // The manager does not watch the folder itself: it would reload on the edit, before the rebuild.
  const session: PluginSession = await openPluginSession({ dir: folder, policyFile: options.policy, logger })
  const name = session.manifest.name
  const callOnce = async () => {
    if (options.call === undefined) return
    try {
      const result = await session.manager.call(name, options.call, callArgs(session.manifest, args))
      process.stdout.write(`${name}.${options.call} → ${formatJson(result)}\n`)
    } catch (error) {
      process.stderr.write(`${formatError(error)}\n`)
    }
  }
  const failed = (what: string, error: unknown) =>
    process.stderr.write(
      `${formatError(error)}\n  the ${what} failed: ${name} keeps serving the version it ran before\n`,
    )
  /**
   * Rebuilds (when the plugin has a build step), then reloads the plugin, and calls it: the new
   * version, or the one still serving when the build or reload failed.
   */
  const update = async () => {
    try {
      if (builds) await build()
    } catch (error) {
      failed('build', error)
      return callOnce()
    }
    try {
      const reloaded = await session.manager.reload(name)
      process.stderr.write(`${errorColors.green('↻')} ${reloaded.history.at(-1)?.reason ?? 'reloaded'}\n`)
    } catch (error) {
      failed('reload', error)
    }
    await callOnce()
  }
  // One update at a time: a change during one updates once more after it.
  let updating: Promise<void> = Promise.resolve()
  let again = false
  let timer: NodeJS.Timeout | undefined
  const changed = () => {
    again = true
    updating = updating.then(async () => {
      if (!again) return
      again = false
      await update()
    })
  }
  const entry = entryPath(session.manifest)
  const sources = watch(folder, {
    ignoreInitial: true,
    ignored: isIgnored(folder, path.normalize(entry), builds),
  })
  sources.on('all', () => {
    clearTimeout(timer)
    timer = setTimeout(changed, 150)
  })
  // Changes count from here on: the first call is made once the watch is in place.
  await new Promise<void>((resolve) => sources.once('ready', () => resolve()))

  process.stderr.write(`${errorColors.green('✓')} ${name} runs; watching ${folder} (Ctrl-C to stop)\n`)
  await callOnce()

  await new Promise<void>((resolve) => {
    const stop = () => resolve()
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
  })
  clearTimeout(timer)
  await sources.close()
  await updating
  await session.close()
}
