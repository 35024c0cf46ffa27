import path from 'node:path'
import { type FSWatcher, watch } from 'chokidar'

/** Options of {@link watchPluginSources}. */
export interface PluginWatcherOptions {
  /** The plugins folder and the sources named one by one. */
  paths: string[]
  /** Quiet time after the last change of a source before it is reported (a build writes many files). */
  debounceMs: number
  /** The plugin source a changed path belongs to, if any. */
  sourceOf(changed: string): string | undefined
  /** Called once per burst of changes of one source. */
  onSourceChanged(source: string): void
  /** A folder that cannot be watched (removed, no permission): the host's to log, not a crash. */
  onError(error: unknown): void
}

/** A running watch; `close()` stops it and its pending reports. */
export interface PluginWatcher {
  /** Resolves once the initial scan is done: changes from then on are reported. */
  readonly ready: Promise<void>
  close(): Promise<void>
}

/** Folders no plugin change lives in: dependencies and version control. */
function isIgnored(file: string): boolean {
  return file.split(path.sep).some((part) => part === 'node_modules' || part === '.git')
}

/**
 * Watches plugin folders (chokidar, links followed) and reports each changed plugin source once per
 * burst of changes, `debounceMs` after the last one.
 *
 * @example
 * const watcher = watchPluginSources({ paths: [pluginsDir], debounceMs: 300, sourceOf, onSourceChanged: reload })
 */
export function watchPluginSources(options: PluginWatcherOptions): PluginWatcher {
  const pending = new Map<string, NodeJS.Timeout>()
  const watcher: FSWatcher = watch(options.paths, { ignoreInitial: true, ignored: isIgnored })
  const ready = new Promise<void>((resolve) => watcher.once('ready', () => resolve()))
  watcher.on('all', (_event, changed) => {
    const source = options.sourceOf(path.resolve(changed))
    if (source === undefined) return
    clearTimeout(pending.get(source))
    const timer = setTimeout(() => {
      pending.delete(source)
      options.onSourceChanged(source)
    }, options.debounceMs)
    timer.unref()
    pending.set(source, timer)
  })
  watcher.on('error', (error) => options.onError(error))
  return {
    ready,
    async close() {
      for (const timer of pending.values()) clearTimeout(timer)
      pending.clear()
      await watcher.close()
    },
  }
}
