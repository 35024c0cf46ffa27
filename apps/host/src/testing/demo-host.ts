import { type Backends, createBackends, createPluginManager, type PluginManager } from '@corral/manager'
import type { Logger, ResourcePolicy } from '@corral/types'

export interface DemoHostOptions {
  pluginsDir: string
  hostVersion: string
  /** The administrator's decisions, stored for plugins that have none stored yet; others stay pending_review. */
  policies: ResourcePolicy[]
  logger: Logger
}

export interface DemoHost {
  /** Every plugin of the folder: those that run, and those that failed with their error. */
  manager: PluginManager
  backends: Backends
  close(): Promise<void>
}

/**
 * A host without its web server, for tests of the plugins themselves: embedded backends (SQLite in
 * memory, in-memory cache, local events) and the plugin manager over the plugins folder. One plugin
 * that fails is reported in its state; the others run regardless.
 */
export async function startDemoHost(options: DemoHostOptions): Promise<DemoHost> {
  const backends = await createBackends({ sqlitePath: ':memory:' })
  const manager = createPluginManager({ ...options, backends })
  const close = async () => {
    await manager.close()
    await backends.close()
  }
  try {
    await manager.start()
  } catch (error) {
    await close()
    throw error
  }
  return { manager, backends, close }
}
