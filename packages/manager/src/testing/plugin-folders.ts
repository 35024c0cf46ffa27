/**
 * Real plugins in temp plugin folders for the manager's integration tests: copies of the built
 * example plugins, WAT plugins compiled at test time, and the gRPC runner's SDK fixture; a manager
 * over embedded backends that a test closes with everything it started.
 */
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { fixturesDir } from '@corral/grpc-runner/testing'
import { parsePolicy } from '@corral/manifest'
import type { Permission, PluginErrorCode, ResourcePolicy } from '@corral/types'
import { isPluginError } from '@corral/types'
import { wat2wasm } from '@corral/wasm-runner/testing'
import { type Backends, createBackends } from '../backends/create-backends.js'
import type { ManagerEvent, PluginManager, PluginManagerOptions } from '../plugin-manager/manager-api.js'
import { createPluginManager } from '../plugin-manager/plugin-manager.js'

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..')
const examplesDir = path.join(repoRoot, 'examples/plugins')
const pluginSdkDir = path.join(repoRoot, 'packages/plugin-sdk')

/** What of each example plugin runs: its manifest and its build output (never sources or node_modules). */
const exampleFiles: Record<string, string[]> = {
  'hello-wasm': ['plugin.yaml', 'build'],
  'c-wasm': ['plugin.yaml', 'build'],
  'hello-grpc': ['plugin.yaml', 'dist'],
}

/** A fresh temp plugins folder; `remove()` deletes it. */
export async function tempPluginsDir(): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'corral-plugins-'))
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) }
}

/**
 * A Node plugin resolves `@corral/plugin-sdk` from its own folder: a link to the workspace's SDK
 * (a link under node_modules, not the entry, so the manifest's folder check still holds).
 */
async function linkPluginSdk(pluginDir: string): Promise<void> {
  await mkdir(path.join(pluginDir, 'node_modules/@corral'), { recursive: true })
  await symlink(pluginSdkDir, path.join(pluginDir, 'node_modules/@corral/plugin-sdk'))
}

/** Copies the built example plugin `name` into `<pluginsDir>/<folder>` (default: its name); returns that folder. */
export async function copyExample(name: string, pluginsDir: string, folder = name): Promise<string> {
  const files = exampleFiles[name]
  if (files === undefined) throw new Error(`no example plugin ${name}`)
  const target = path.join(pluginsDir, folder)
  for (const file of files) {
    await cp(path.join(examplesDir, name, file), path.join(target, file), { recursive: true })
  }
  if (files.includes('dist')) await linkPluginSdk(target)
  return target
}

/** Rewrites a plugin's `plugin.yaml` with `edit` (e.g. a new version or default config). */
export async function editManifest(pluginDir: string, edit: (yaml: string) => string): Promise<void> {
  const file = path.join(pluginDir, 'plugin.yaml')
  await writeFile(file, edit(await readFile(file, 'utf8')))
}

/** Writes a WASM plugin compiled from WAT (see `corralWat`) as `<pluginsDir>/<name>`. */
export async function writeWatPlugin(pluginsDir: string, name: string, wat: string): Promise<string> {
  const dir = path.join(pluginsDir, name)
  await mkdir(dir, { recursive: true })
  await writeFile(path.join(dir, 'plugin.wasm'), await wat2wasm(wat))
  await writeFile(
    path.join(dir, 'plugin.yaml'),
    `name: ${name}\nversion: 0.1.0\nruntime: wasm\nentry:\n  wasm: plugin.wasm\nresources:\n  call_timeout: 2s\n`,
  )
  return dir
}

/**
 * The gRPC runner's SDK fixture (`pid`, `echo`, `crash`, `slow`, …) as `<pluginsDir>/<name>`, run
 * in `mode` (see the fixture).
 */
export async function writeSdkFixturePlugin(
  pluginsDir: string,
  name: string,
  mode = 'well',
): Promise<string> {
  const dir = path.join(pluginsDir, name)
  await mkdir(dir, { recursive: true })
  await cp(path.join(fixturesDir, 'sdk-plugin.mjs'), path.join(dir, 'sdk-plugin.mjs'))
  await linkPluginSdk(dir)
  await writeFile(
    path.join(dir, 'plugin.yaml'),
    [
      `name: ${name}`,
      'version: 0.1.0',
      'runtime: grpc',
      'entry:',
      '  node: sdk-plugin.mjs',
      `  args: [${mode}, ${name}]`,
      'resources:',
      '  call_timeout: 5s',
      '  shutdown_timeout: 2s',
      '',
    ].join('\n'),
  )
  return dir
}

/** An approved policy granting `grants`, with limits and rate limits as given (the rest default). */
export function approved(
  plugin: string,
  grants: Permission[] = [],
  more: {
    limits?: Partial<ResourcePolicy['limits']>
    rate_limits?: Partial<ResourcePolicy['rate_limits']>
  } = {},
): ResourcePolicy {
  return parsePolicy({ plugin, status: 'approved', grants, ...more })
}

/** A manager over fresh embedded backends, quiet, with the events it emits recorded. */
export async function startManager(options: Omit<PluginManagerOptions, 'backends' | 'hostVersion'>): Promise<{
  manager: PluginManager
  events: ManagerEvent[]
  backends: Backends
  /** Closes the manager, then the backends (each once). */
  close(): Promise<void>
}> {
  const backends = await createBackends({ databaseUrl: '', redisUrl: '' })
  const manager = createPluginManager({
    hostVersion: '1.0.0',
    logger: { log() {} },
    ...options,
    backends,
  })
  const events: ManagerEvent[] = []
  manager.events.subscribe((event) => events.push(event))
  let closing: Promise<void> | undefined
  const close = () => {
    closing ??= manager.close().finally(() => backends.close())
    return closing
  }
  try {
    await manager.start()
  } catch (error) {
    await close()
    throw error
  }
  return { manager, events, backends, close }
}

/** The state changes of `plugin` among `events`, as `from→to`. */
export function stateChanges(events: ManagerEvent[], plugin: string): string[] {
  return events.flatMap((event) =>
    event.type === 'plugin.state' && event.plugin === plugin ? [`${event.from}→${event.to}`] : [],
  )
}

/** The error code a promise rejects with (it must reject with a PluginError). */
export async function failureCode(promise: Promise<unknown>): Promise<PluginErrorCode> {
  const error = await promise.then(
    () => {
      throw new Error('expected the call to fail')
    },
    (e: unknown) => e,
  )
  if (!isPluginError(error)) throw new Error(`expected a PluginError, got ${String(error)}`)
  return error.code
}

/** What {@link steadyCalls} saw. */
export interface CallStreamResult {
  ok: number
  failed: number
  /** The first few failures, to show what went wrong. */
  failures: unknown[]
  /** Each distinct result (as `view` shows it), in the order first seen. */
  distinct: string[]
}

/**
 * Calls `fn` of `plugin` one after another in two lanes, a few milliseconds apart, until stopped:
 * what a host under steady traffic does while a plugin is reloaded.
 */
export function steadyCalls(
  manager: PluginManager,
  plugin: string,
  fn: string,
  args: unknown,
  view: (result: unknown) => string = JSON.stringify,
): { stop(): Promise<CallStreamResult> } {
  let running = true
  const seen: CallStreamResult = { ok: 0, failed: 0, failures: [], distinct: [] }
  const lane = async () => {
    while (running) {
      try {
        const shown = view(await manager.call(plugin, fn, args))
        seen.ok += 1
        if (!seen.distinct.includes(shown)) seen.distinct.push(shown)
      } catch (error) {
        seen.failed += 1
        if (seen.failures.length < 5) seen.failures.push(error)
      }
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  }
  const all = Promise.all([lane(), lane()])
  return {
    async stop() {
      running = false
      await all
      return seen
    },
  }
}
