import type { HealthStatus, Manifest, PluginErrorData, ResourcePolicy } from '@corral/types'
import { PluginError } from '@corral/types'
import type { PluginInfo } from './manager-api.js'
import type { PluginLifecycle } from './plugin-lifecycle.js'
import type { PluginCallMetrics } from './plugin-metrics.js'
import type { PluginVersion } from './plugin-version.js'

/** Everything the manager keeps of one plugin, whether it runs or not. */
export interface ManagedPlugin {
  readonly name: string
  /** Its source: a plugin folder or a bare `.wasm` file. */
  path: string
  readonly lifecycle: PluginLifecycle
  readonly metrics: PluginCallMetrics
  /** Its calls' rate-limiter key (`callsInKey`), built once. */
  readonly callsInKey: string
  manifest?: Manifest
  policy?: ResourcePolicy
  /** The version that takes new calls. */
  current?: PluginVersion
  /** Versions still running: the current one and those a reload or stop is draining. */
  readonly live: Set<PluginVersion>
  /** Its last load or lifecycle failure (load, register, init, reload, quarantine); cleared once it runs again. */
  lastError?: PluginErrorData
  health?: HealthStatus
  loadOrder: number
  /** Its loads, reloads, stops and policy changes run one at a time, in order. */
  queue: Promise<unknown>
}

/** Runs `work` after every earlier operation on the plugin has settled. */
export function exclusive<T>(record: ManagedPlugin, work: () => Promise<T>): Promise<T> {
  const run = record.queue.then(work, work)
  record.queue = run.catch(() => {})
  return run
}

/** Records a failed load, register or init as the plugin's last error and moves it to `failed`. */
export function markFailed(record: ManagedPlugin, error: unknown): PluginError {
  const failure = PluginError.from(error, 'load_failed', record.name)
  record.lastError = failure.toData()
  record.lifecycle.move('failed', failure.rawMessage)
  return failure
}

/** What `list()` and `get()` tell of a plugin. */
export function pluginInfo(record: ManagedPlugin): PluginInfo {
  let inFlight = 0
  for (const version of record.live) inFlight += version.inFlight
  const { manifest, current } = record
  return {
    name: record.name,
    state: record.lifecycle.state,
    path: record.path,
    runtime: manifest?.runtime,
    version: manifest?.version,
    manifest,
    registration: current?.registration,
    policy: record.policy,
    requested: manifest?.resources,
    grant: current?.grant,
    // What a version that no longer runs last answered says nothing of the plugin now.
    health:
      current === undefined
        ? { ready: false, message: `the plugin is ${record.lifecycle.state}` }
        : record.health,
    metrics: record.metrics.snapshot(inFlight),
    lastError: record.lastError,
    history: record.lifecycle.history,
  }
}
