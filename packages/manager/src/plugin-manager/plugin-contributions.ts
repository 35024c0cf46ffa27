import type { GroupSpec, Logger, Registration } from '@corral/types'
import { PluginError } from '@corral/types'
import type { MutableJobScheduler } from './jobs/job-scheduler.js'
import type { GroupStore, JobScheduler, ManagerEvent } from './manager-api.js'
import type { MutableRegistries } from './registries/registries.js'

/**
 * What running plugins add to the host, kept in step with their lifecycle: registry entries (routes,
 * menus, …), cron jobs and RBAC groups. The rule: a plugin that has a version taking calls (running,
 * degraded, quarantined) has its entries; one that has none (stopped, blocked, failed, unloaded) has
 * none. A quarantined plugin keeps its routes and jobs, whose calls fail with `unavailable` until a
 * `reset`: a quarantine ends without a reload, and a route that answers 503 says more than a 404.
 */
export interface PluginContributions {
  readonly registries: MutableRegistries
  readonly jobs: JobScheduler
  /**
   * Makes `registration` the plugin's entries in the registries, atomically. Synchronous, so that
   * the caller swaps versions in the same turn; a conflict throws `already_exists` (naming both
   * plugins) and changes nothing.
   */
  mount(plugin: string, registration: Registration): void
  /** Schedules the plugin's jobs under its call timeout (again, when that changed); a failure is reported. */
  schedule(plugin: string, registration: Registration, callTimeoutMs: number): Promise<void>
  /** Creates the plugin's groups through the host's store; a failure is reported, never fatal. */
  ensureGroups(plugin: string, registration: Registration): Promise<void>
  /** Drops the plugin's registry entries and jobs (its job runs going on are aborted). */
  withdraw(plugin: string): void
  /** Stops scheduling jobs and waits for the runs going on. */
  close(): Promise<void>
}

/** The jobs of a manager created with `jobs: false`: none, and saying why. */
const noJobs: JobScheduler = {
  list: () => [],
  setEnabled: (plugin) => Promise.reject(jobsDisabled(plugin)),
  runNow: (plugin) => Promise.reject(jobsDisabled(plugin)),
}

function jobsDisabled(plugin: string): PluginError {
  return new PluginError('unavailable', 'this plugin manager runs no jobs (jobs: false)', { plugin })
}

/**
 * Ties registries, job scheduler and group store to plugins' comings and goings, and tells
 * `emit` of every registry change.
 *
 * @example
 * const contributions = createPluginContributions({ registries, jobs, emit, logger })
 * contributions.mount('stats', registration)        // throws already_exists on a route conflict
 * await contributions.schedule('stats', registration, 5_000)
 */
export function createPluginContributions(options: {
  registries: MutableRegistries
  /** Absent: the manager runs no jobs. */
  jobs?: MutableJobScheduler
  groups?: GroupStore
  emit(event: ManagerEvent): void
  logger: Logger
}): PluginContributions {
  const { registries, jobs, groups, emit, logger } = options
  const report = (plugin: string, what: string, error: unknown) =>
    logger.log('warn', what, { plugin, error: PluginError.from(error).message })
  const mounted = new Set<string>()

  return {
    registries,
    jobs: jobs ?? noJobs,
    mount(plugin, registration) {
      registries.put(plugin, registration)
      mounted.add(plugin)
      emit({ type: 'registry.changed', plugin, at: Date.now() })
    },
    async schedule(plugin, registration, callTimeoutMs) {
      await jobs?.put(plugin, registration.jobs, callTimeoutMs).catch((error) => {
        report(plugin, 'the plugin runs, but its jobs could not be scheduled', error)
      })
    },
    async ensureGroups(plugin, registration) {
      if (groups === undefined) return
      for (const group of registration.groups) {
        const spec: GroupSpec & { plugin: string } = { ...group, plugin }
        await groups.ensure(spec).catch((error) => {
          report(plugin, `group ${group.name} could not be created`, error)
        })
      }
    },
    withdraw(plugin) {
      jobs?.remove(plugin)
      if (!mounted.delete(plugin)) return
      registries.remove(plugin)
      emit({ type: 'registry.changed', plugin, at: Date.now() })
    },
    async close() {
      await jobs?.close()
    },
  }
}
