import path from 'node:path'
import { createGrpcRunner } from '@corral/grpc-runner'
import {
  createBackends,
  createPolicyGrantLookup,
  createSandboxedHostApi,
  createSqlPolicyStore,
  type SandboxedHostApi,
} from '@corral/manager'
import { validateConfig } from '@corral/manifest'
import type {
  Logger,
  Manifest,
  Plugin,
  PluginRuntime,
  Registration,
  ResourcePolicy,
  Runner,
} from '@corral/types'
import { PluginError } from '@corral/types'
import { createWasmRunner } from '@corral/wasm-runner'
import { discoverPlugins } from './discover-plugins.js'

export interface DemoHostOptions {
  pluginsDir: string
  hostVersion: string
  /** The administrator's decisions; plugins not listed stay pending_review. */
  policies: ResourcePolicy[]
  logger: Logger
}

/** A plugin that loaded, registered and initialised. */
export interface RunningPlugin {
  manifest: Manifest
  plugin: Plugin
  registration: Registration
}

export interface DemoHost {
  running: Map<string, RunningPlugin>
  /** Plugin folders that could not be loaded, each with its error; the others run regardless. */
  failed: Array<{ name: string; error: PluginError }>
  hostApi: SandboxedHostApi
  policyOf(plugin: string): Promise<ResourcePolicy>
  close(): Promise<void>
}

/**
 * The demo host: embedded backends (SQLite in memory, in-memory cache, local events), the policy
 * store seeded with the administrator's decisions, the sandboxed host API, and both runners. Every
 * example plugin is loaded, registered and initialised; one that fails is reported and skipped.
 */
export async function startDemoHost(options: DemoHostOptions): Promise<DemoHost> {
  const backends = await createBackends({ sqlitePath: ':memory:' })
  const policies = createSqlPolicyStore(backends.database)
  for (const policy of options.policies) await policies.put(policy)

  const discovered = await discoverPlugins(options.pluginsDir, options.hostVersion)
  const manifests = new Map(discovered.flatMap((d) => (d.ok ? [[d.manifest.name, d.manifest] as const] : [])))
  const grants = createPolicyGrantLookup({ policies, requestOf: (name) => manifests.get(name)?.resources })
  const running = new Map<string, RunningPlugin>()
  const configs = new Map<string, Record<string, unknown>>()

  const hostApi = createSandboxedHostApi({
    backends,
    grants,
    logger: options.logger,
    config: (plugin) => configs.get(plugin),
    callPlugin: (target, fn, args, { chain, deadline, token, signal }) => {
      const callee = running.get(target)
      if (callee === undefined) throw new PluginError('unavailable', `plugin ${target} is not running`)
      return callee.plugin.call(fn, args, {
        chain,
        token,
        signal,
        timeoutMs: Math.max(1, deadline - Date.now()),
      })
    },
  })
  const runners: Record<PluginRuntime, Runner> = {
    wasm: createWasmRunner(),
    grpc: createGrpcRunner({ hostVersion: options.hostVersion, logger: options.logger }),
  }

  const failed: DemoHost['failed'] = discovered.flatMap((d) =>
    d.ok ? [] : [{ name: path.basename(d.dir), error: d.error }],
  )
  for (const found of discovered) {
    if (!found.ok) continue
    const { manifest, dir } = found
    try {
      const grant = await grants(manifest.name)
      if (grant.status === 'blocked') throw new PluginError('permission_denied', 'blocked by policy')
      const config = validateConfig(manifest)
      configs.set(manifest.name, config)
      const plugin = await runners[manifest.runtime].load({
        manifest,
        dir,
        grant,
        hostApi: hostApi.forPlugin(manifest.name),
      })
      try {
        const registration = await plugin.register()
        await plugin.init(config)
        running.set(manifest.name, { manifest, plugin, registration })
      } catch (error) {
        await plugin.shutdown().catch(() => {})
        throw error
      }
    } catch (error) {
      failed.push({ name: manifest.name, error: PluginError.from(error, 'load_failed', manifest.name) })
    }
  }

  return {
    running,
    failed,
    hostApi,
    policyOf: (plugin) => policies.get(plugin),
    async close() {
      // Each runner shuts down every plugin it loaded.
      await Promise.allSettled([runners.wasm.close(), runners.grpc.close()])
      await backends.close()
    },
  }
}
