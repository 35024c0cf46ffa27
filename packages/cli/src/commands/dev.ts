import path from 'node:path'
import type { ManagerEvent } from '@corral/manager'
import { watch } from 'chokidar'
import { cliLogger, errorColors, formatError, formatJson } from '../output.js'
import { entryPath, openPluginSession, type PluginSession } from '../plugin-session.js'
import { buildPlugin } from './build.js'
import { parseArgs } from './call.js'

/** Options of `corral dev`. */
export interface DevOptions {
  call?: string
  args?: string
  policy?: string
  verbose?: boolean
}

/** Paths a rebuild writes, or no source lives in: a change there starts no build. */
function isBuildOutput(dir: string, entry: string) {
  const outputs = new Set(['node_modules', '.git', 'build', 'dist', 'plugin.sig', path.dirname(entry)])
  return (file: string) => {
    const relative = path.relative(dir, file)
    const top = relative.split(path.sep)[0] ?? ''
    return relative === entry || outputs.has(top)
  }
}

/**
 * `corral dev <dir>`: builds the plugin, runs it in a host of its own that hot-reloads it on every
 * change of its folder (the manager's `watch`), rebuilds it on every source change, and calls
 * `--call` after the start and each reload, printing what it answers. Runs until interrupted.
 */
export async function devCommand(dir: string, options: DevOptions): Promise<void> {
  const folder = path.resolve(dir)
  const args = parseArgs(options.args)
  const logger = cliLogger(options.verbose === true)
  const build = () => buildPlugin(folder, true)
  await build()

  const session: PluginSession = await openPluginSession({
    dir: folder,
    policyFile: options.policy,
    logger,
    watch: true,
  })
  const name = session.manifest.name
  const callOnce = async () => {
    if (options.call === undefined) return
    try {
      const result = await session.manager.call(name, options.call, args)
      process.stdout.write(`${name}.${options.call} → ${formatJson(result)}\n`)
    } catch (error) {
      process.stderr.write(`${formatError(error)}\n`)
    }
  }
  session.manager.events.subscribe((event: ManagerEvent) => {
    if (event.type !== 'plugin.state' || event.plugin !== name) return
    if (event.from === 'running' && event.to === 'running' && event.reason.startsWith('reloaded')) {
      process.stderr.write(`${errorColors.green('↻')} ${event.reason}\n`)
      void callOnce()
    } else if (event.reason.startsWith('reload failed')) {
      process.stderr.write(`${errorColors.red('✗')} ${event.reason}\n`)
    }
  })
  // Builds one at a time: a change during a build builds once more after it.
  let building: Promise<void> = Promise.resolve()
  let again = false
  let timer: NodeJS.Timeout | undefined
  const rebuild = () => {
    again = true
    building = building.then(async () => {
      if (!again) return
      again = false
      await build().catch((error) => process.stderr.write(`${formatError(error)}\n`))
    })
  }
  const entry = entryPath(session.manifest)
  const sources = watch(folder, {
    ignoreInitial: true,
    ignored: isBuildOutput(folder, path.normalize(entry)),
  })
  sources.on('all', () => {
    clearTimeout(timer)
    timer = setTimeout(rebuild, 150)
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
  await building
  await session.close()
}
