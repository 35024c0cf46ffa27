import type { PolicyStore, SandboxedHostApi } from '@corral/manager'
import { defaultPolicy, parsePolicy } from '@corral/manifest'
import type {
  GroupSpec,
  HttpMethod,
  MenuLocation,
  Permission,
  ResourcePolicy,
  RouteSpec,
  WidgetSpec,
} from '@corral/types'
import { PluginError } from '@corral/types'
import type { JobInfo, ManagerEvent, MountedRoute, PluginInfo, PluginManager } from '../manager-api.js'
import { hostMenu } from '../pages/host-menu.js'

/** One plugin of the fake: its routes, widgets and functions, in memory. */
export interface FakePlugin {
  name: string
  requested: Permission[]
  status?: ResourcePolicy['status']
  routes?: RouteSpec[]
  widgets?: WidgetSpec[]
  errorCodes?: Array<{ code: string; http_status: number; message: string }>
  /** The groups it declares (the fake does not create them in the users store). */
  groups?: GroupSpec[]
  /** Its cron jobs: `run now` calls the function named `handler`. */
  jobs?: Array<{ id: string; cron: string; handler: string; enabled: boolean }>
  functions: Record<string, (args: unknown) => unknown>
}

/**
 * A PluginManager in memory, for the HTTP server's unit tests only: functions are JavaScript, policy
 * checks are `parsePolicy`'s. The integration tests run the real manager.
 */
export function createFakeManager(
  plugins: FakePlugin[],
): PluginManager & { emit(event: ManagerEvent): void } {
  const listeners = new Set<(event: ManagerEvent) => void>()
  const policies = new Map<string, ResourcePolicy>()
  const byName = new Map(plugins.map((p) => [p.name, p]))
  for (const p of plugins)
    policies.set(
      p.name,
      p.status === undefined
        ? defaultPolicy(p.name)
        : { ...defaultPolicy(p.name), status: p.status, grants: p.requested },
    )
  const emit = (event: ManagerEvent) => {
    for (const listener of listeners) listener(event)
  }
  const info = (p: FakePlugin): PluginInfo => ({
    name: p.name,
    state: 'running',
    path: `/plugins/${p.name}`,
    runtime: 'wasm',
    version: '1.0.0',
    policy: policies.get(p.name),
    requested: { permissions: p.requested } as PluginInfo['requested'],
    metrics: {
      calls: 0,
      inFlight: 0,
      errors: {},
      latencyMs: { bounds: [], counts: [], sum: 0, count: 0 },
      restarts: 0,
      eventsDropped: 0,
    },
    history: [],
  })
  const routes = (): MountedRoute[] =>
    plugins.flatMap((p) =>
      (p.routes ?? []).map((r) => ({ ...r, plugin: p.name, fullPath: `/plugins/${p.name}${r.path}` })),
    )
  const jobs: JobInfo[] = plugins.flatMap((p) =>
    (p.jobs ?? []).map((j) => ({ ...j, plugin: p.name, timeoutMs: 1000, running: false })),
  )
  const jobOf = (plugin: string, id: string) => {
    const job = jobs.find((j) => j.plugin === plugin && j.id === id)
    if (job === undefined) throw new PluginError('not_found', `no job ${id} of ${plugin}`)
    return job
  }
  const policyStore = {
    get: async (plugin: string) => policies.get(plugin) ?? defaultPolicy(plugin),
    list: async () => [...policies.values()],
  } as unknown as PolicyStore

  return {
    emit,
    async start() {},
    async call(plugin, fn, args) {
      const p = byName.get(plugin)
      const f = p?.functions[fn]
      if (f === undefined) throw new PluginError('unimplemented', `${plugin}.${fn} does not exist`)
      return (await f(args)) as never
    },
    client() {
      throw new PluginError('unimplemented', 'the fake manager has no typed clients: the host calls by name')
    },
    list: () => plugins.filter((p) => byName.has(p.name)).map(info),
    get: (name) => {
      const p = byName.get(name)
      return p === undefined ? undefined : info(p)
    },
    async load(path) {
      throw new PluginError('not_found', `no plugin at ${path}`)
    },
    async unload(name) {
      byName.delete(name)
    },
    async reload(name) {
      const p = byName.get(name)
      if (p === undefined) throw new PluginError('not_found', `no plugin ${name}`)
      emit({
        type: 'plugin.state',
        plugin: name,
        from: 'running',
        to: 'running',
        reason: 'reloaded',
        at: Date.now(),
      })
      emit({ type: 'registry.changed', plugin: name, at: Date.now() })
      return info(p)
    },
    async reset() {},
    async setPolicy(value) {
      const policy = parsePolicy(value)
      if (!byName.has(policy.plugin)) throw new PluginError('not_found', `no plugin ${policy.plugin}`)
      policies.set(policy.plugin, policy)
      return policy
    },
    policies: policyStore,
    hostApi: { metrics: () => ({}) } as unknown as SandboxedHostApi,
    registries: {
      routes,
      matchRoute(method: HttpMethod, path: string) {
        for (const route of routes()) {
          if (route.method !== method || !byName.has(route.plugin)) continue
          const want = route.fullPath.split('/')
          const got = path.split('/')
          if (want.length !== got.length) continue
          const params: Record<string, string> = {}
          let same = true
          for (const [i, seg] of want.entries()) {
            if (seg.startsWith(':')) params[seg.slice(1)] = got[i] ?? ''
            else same &&= seg === got[i]
          }
          if (same) return { route, params }
        }
        return undefined
      },
      menu: (location: MenuLocation) => hostMenu.filter((item) => item.location === location),
      widgets: () => plugins.flatMap((p) => (p.widgets ?? []).map((w) => ({ ...w, plugin: p.name }))),
      template: () => undefined,
      templates: () => [],
      translate: () => undefined,
      errorCode: (qualified: string) => {
        const [plugin, code] = qualified.split(':')
        const spec = byName.get(plugin ?? '')?.errorCodes?.find((c) => c.code === code)
        return spec === undefined ? undefined : { ...spec, plugin: plugin as string, qualified }
      },
      errorCodes: () => [],
      errorFor: (plugin: string, code: string) => ({
        plugin,
        code,
        qualified: `${plugin}:${code}`,
        message: code,
        http_status: 500,
      }),
      groups: () =>
        plugins.flatMap((p) =>
          byName.has(p.name) ? (p.groups ?? []).map((g) => ({ ...g, plugin: p.name })) : [],
        ),
      landingPage: () => undefined,
    },
    jobs: {
      list: () => jobs.filter((j) => byName.has(j.plugin)),
      async setEnabled(plugin, id, enabled) {
        jobOf(plugin, id).enabled = enabled
      },
      async runNow(plugin, id) {
        const job = jobOf(plugin, id)
        const at = Date.now()
        try {
          await byName.get(plugin)?.functions[job.handler]?.({})
          job.lastRun = { at, ok: true, durationMs: Date.now() - at }
        } catch (error) {
          job.lastRun = {
            at,
            ok: false,
            durationMs: Date.now() - at,
            error: PluginError.from(error).toJSON(),
          }
        }
        return job.lastRun
      },
    },
    events: {
      subscribe(listener) {
        listeners.add(listener)
        return () => listeners.delete(listener)
      },
    },
    async close() {},
  }
}
