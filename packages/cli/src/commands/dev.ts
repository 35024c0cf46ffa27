import path from 'node:path'
import { loadManifest } from '@corral/manifest'
import type { Manifest } from '@corral/types'
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

/** What the watch knows of the plugin, from the last refresh that read its manifest and ran its build. */
interface WatchedPlugin {
  /** The entry its manifest names (normalized); undefined before a manifest was read. */
  entry?: string
  /** Whether it has a build step; taken to have one before a build ran. */
  builds: boolean
}

/** Where no source lives. */
const neverSources = new Set(['node_modules', '.git', 'plugin.sig'])

/**
 * Paths where no source lives, and, for a plugin with a build step, the paths its build writes: a
 * change there starts nothing. A plugin without a build step is reloaded when its entry changes.
 */
function isIgnored(dir: string, plugin: WatchedPlugin) {
  return (file: string) => {
    const relative = path.relative(dir, file)
    const top = relative.split(path.sep)[0] ?? ''
    if (neverSources.has(top)) return true
    if (!plugin.builds) return false
    const entry = plugin.entry
    return (
      top === 'build' ||
      top === 'dist' ||
      (entry !== undefined && (relative === entry || top === path.dirname(entry)))
    )
  }
}

/**
 * `corral dev <dir>`: builds the plugin, runs it in a host of its own, and on every change of its
 * folder reads its manifest, rebuilds it and, once both have succeeded, reloads it (one edit, one
 * reload, of the rebuilt plugin; a failed step leaves the running version serving, or, before the
 * plugin first ran, waits for the next change), then calls `--call`, printing what it answers. Runs
 * until interrupted.
 */
export async function devCommand(dir: string, options: DevOptions): Promise<void> {
  const folder = await resolvePluginFolder(dir)
  const given = parseArgs(options.args)
  const logger = cliLogger(options.verbose === true)
  const watched: WatchedPlugin = { builds: true }
  let session: PluginSession | undefined

  const callOnce = async () => {
    if (options.call === undefined || session === undefined) return
    const { name } = session.manifest
    try {
      const result = await session.manager.call(name, options.call, callArgs(session.manifest, given))
      process.stdout.write(`${name}.${options.call} → ${formatJson(result)}\n`)
    } catch (error) {
      process.stderr.write(`${formatError(error)}\n`)
    }
  }
  const failed = (step: string, error: unknown) => {
    const then =
      session === undefined
        ? 'nothing runs yet; corral dev tries again on the next change'
        : `${session.manifest.name} keeps serving the version it ran before`
    process.stderr.write(`${formatError(error)}\n  the ${step} failed: ${then}\n`)
  }
  /**
   * Reads the manifest, rebuilds (when the plugin has a build step), then loads the plugin (until it
   * first runs) or reloads it. A step that fails is reported by its name and ends the refresh.
   */
  const refresh = async () => {
    let manifest: Manifest
    try {
      manifest = (await loadManifest(folder)).manifest
      watched.entry = path.normalize(entryPath(manifest))
    } catch (error) {
      return failed('manifest check', error)
    }
    try {
      watched.builds = await buildPlugin(folder, true)
    } catch (error) {
      return failed('build', error)
    }
    if (session === undefined) {
      try {
        // The manager does not watch the folder itself: it would reload on the edit, before the rebuild.
        session = await openPluginSession({ dir: folder, policyFile: options.policy, logger })
      } catch (error) {
        return failed('load', error)
      }
      process.stderr.write(`${errorColors.green('✓')} ${session.manifest.name} runs\n`)
      return
    }
    try {
      const reloaded = await session.reload(manifest)
      process.stderr.write(`${errorColors.green('↻')} ${reloaded.history.at(-1)?.reason ?? 'reloaded'}\n`)
    } catch (error) {
      failed('reload', error)
    }
  }
  await refresh()

  // One update at a time: a change during one updates once more after it. Each update calls the
  // plugin: the new version, or the one still serving when a step failed.
  let updating: Promise<void> = Promise.resolve()
  let again = false
  let timer: NodeJS.Timeout | undefined
  const changed = () => {
    again = true
    updating = updating.then(async () => {
      if (!again) return
      again = false
      await refresh()
      await callOnce()
    })
  }
  const sources = watch(folder, { ignoreInitial: true, ignored: isIgnored(folder, watched) })
  sources.on('all', () => {
    clearTimeout(timer)
    timer = setTimeout(changed, 150)
  })
  // Changes count from here on: the first call is made once the watch is in place.
  await new Promise<void>((resolve) => sources.once('ready', () => resolve()))

  process.stderr.write(`  watching ${folder} (Ctrl-C to stop)\n`)
  await callOnce()

  await new Promise<void>((resolve) => {
    const stop = () => resolve()
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
    // Its reader gone (`corral dev … | head`), nothing it prints is read any more.
    process.stdout.once('error', stop)
  })
  clearTimeout(timer)
  await sources.close()
  await updating
  await session?.close()
}
