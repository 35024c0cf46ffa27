import type { GoPluginClient } from './go-plugin-client.js'
import { residentSetMiB } from './resident-memory.js'

/** How the runner watches its plugin processes (restarts: `RestartOptions` of `@corral/types`). */
export interface SupervisionOptions {
  /** Health-check every this many ms. Default 10 s. */
  healthIntervalMs: number
  /** A health check not answered SERVING within this is a failure. Default 2 s. */
  healthTimeoutMs: number
  /** This many failed checks in a row restart the plugin. Default 2. */
  healthFailures: number
  /** Check the resident set against `memory_mb` every this many ms. Default 5 s. */
  memoryIntervalMs: number
  /**
   * This many checks in a row above `memory_mb` restart the plugin: a passing spike (a large
   * argument, a garbage collection not yet run) is not a restart. Default 3.
   */
  memoryChecks: number
}

/** What a watch asks of the plugin it watches. */
export interface WatchedPlugin {
  /** Whether the watched client is still the plugin's running one (checks end with it). */
  isCurrent(client: GoPluginClient): boolean
  /** The grant's `memory_mb` now: a changed grant holds from the next check. */
  memoryLimitMiB(): number
  /** The process failed its checks: the plugin lets it go and restarts. */
  failed(client: GoPluginClient, reason: string): void
}

/**
 * Health checks of a running plugin's connection and, for a process the runner owns (`pid` known,
 * `watchMemory`), its resident set against `memory_mb`. Returns the function that stops both.
 */
export function watchProcess(
  client: GoPluginClient,
  options: SupervisionOptions,
  watchMemory: boolean,
  plugin: WatchedPlugin,
): () => void {
  let healthFailures = 0
  const health = setInterval(() => {
    void client.health(options.healthTimeoutMs).then((ok) => {
      if (!plugin.isCurrent(client)) return
      healthFailures = ok ? 0 : healthFailures + 1
      if (healthFailures >= options.healthFailures) {
        plugin.failed(client, `it failed ${healthFailures} health checks in a row`)
      }
    })
  }, options.healthIntervalMs)
  // The samples above the limit in a row, MiB.
  let above: number[] = []
  const memory = setInterval(() => {
    const pid = client.pid
    if (pid === undefined || !watchMemory) return
    void residentSetMiB(pid).then((mib) => {
      const limit = plugin.memoryLimitMiB()
      if (mib === undefined || !plugin.isCurrent(client)) return
      above = mib > limit ? [...above, mib] : []
      if (above.length < options.memoryChecks) return
      const seen = above.map((sample) => sample.toFixed(0)).join(', ')
      plugin.failed(
        client,
        `its resident set stayed above its memory_mb of ${limit} for ${above.length} checks ${options.memoryIntervalMs} ms apart (${seen} MiB)`,
      )
    })
  }, options.memoryIntervalMs)
  health.unref()
  memory.unref()
  return () => {
    clearInterval(health)
    clearInterval(memory)
  }
}
