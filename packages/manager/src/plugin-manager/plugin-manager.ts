import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { createGrpcRunner } from '@corral/grpc-runner'
import { effectiveGrant } from '@corral/manifest'
import type {
  CallOptions,
  HealthStatus,
  Logger,
  Manifest,
  PluginErrorData,
  PluginRuntime,
  ResourcePolicy,
  Runner,
} from '@corral/types'
import { PluginError, stderrLogger } from '@corral/types'
import { createWasmRunner } from '@corral/wasm-runner'
import { createPolicyGrantLookup } from '../host-api/grant-lookup.js'
import { createSandboxedHostApi } from '../host-api/sandboxed-host-api.js'
import { createSqlPolicyStore } from '../policy-store/policy-store.js'
import { admitCall } from './call-rate.js'
import type {
  ManagerCallOptions,
  PluginInfo,
  PluginManager,
  PluginManagerOptions,
  StateTransition,
} from './manager-api.js'
import { createManagerEventHub } from './manager-events.js'
import { type DiscoveredPlugin, discoverPlugins, readPluginSource } from './plugin-discovery.js'
import { PluginLifecycle, stateOfRuntime } from './plugin-lifecycle.js'
import { loadPluginVersion, type PluginLoaderOptions } from './plugin-loader.js'
import { PluginCallMetrics } from './plugin-metrics.js'
import type { PluginVersion } from './plugin-version.js'
import { type PluginWatcher, watchPluginSources } from './plugin-watcher.js'
import { policyAction } from './policy-application.js'
import { createSqlStateHistoryStore } from './state-history-store.js'

/** How many state changes each plugin's history keeps, by default. */
const defaultHistorySize = 50
/** The watcher's default quiet time before a changed plugin is reloaded. */
const defaultDebounceMs = 300
/**
 * How often health is asked and policies stored by another replica are looked for. A policy put
 * through this manager applies at once; one put elsewhere within this time (and the store's cache).
 */
const supervisionIntervalMs = 2_000
/** Beyond its own call timeout, how long a stop waits for a version's calls to finish. */
const drainSlackMs = 1_000

/** Everything the manager keeps of one plugin, whether it runs or not. */
interface ManagedPlugin {
  readonly name: string
  /** Its source: a plugin folder or a bare `.wasm` file. */
  path: string
  readonly lifecycle: PluginLifecycle
  readonly metrics: PluginCallMetrics
  manifest?: Manifest
  policy?: ResourcePolicy
  /** The version that takes new calls. */
  current?: PluginVersion
  /**
   * The manifest of a version being loaded: its host calls during `init` are granted what it asks
   * for (∩ policy), not what the running version asked for. Until the swap, the running version's
   * host calls get the same, still within the policy.
   */
  loading?: Manifest
  /** Versions still running: the current one and those a reload or stop is draining. */
  readonly live: Set<PluginVersion>
  lastError?: PluginErrorData
  health?: HealthStatus
  loadOrder: number
  /** Its loads, reloads, stops and policy changes run one at a time, in order. */
  queue: Promise<unknown>
}

/**
 * Creates the plugin manager: it discovers plugins, loads each with the runner of its runtime under
 * the grant its policy gives, moves each through one lifecycle, applies policy changes live, routes
 * calls with rate limits and metrics, reloads changed plugins without dropping a call, and stops
 * everything in reverse load order.
 *
 * @example
 * const backends = await createBackends({ sqlitePath: 'data/corral.db' })
 * const manager = createPluginManager({ pluginsDir: 'plugins', hostVersion: '1.0.0', backends })
 * await manager.start()
 * const out = await manager.call<{ name: string }, { message: string }>('hello-wasm', 'greet', { name: 'Ada' })
 * await manager.close()
 */
export function createPluginManager(options: PluginManagerOptions): PluginManager {
  const logger = options.logger ?? stderrLogger
  const historySize = options.historySize ?? defaultHistorySize
  const { backends, hostVersion } = options
  const policies = createSqlPolicyStore(backends.database)
  const history = createSqlStateHistoryStore(backends.database, { keep: historySize })
  const events = createManagerEventHub(backends.events)
  const records = new Map<string, ManagedPlugin>()
  /** Sources unloaded by hand: a change on disk does not bring them back. */
  const unloaded = new Set<string>()
  const runners = resolveRunners(options, logger)
  let loadCounter = 0
  let closed = false
  let closing: Promise<void> | undefined
  let starting: Promise<void> | undefined
  let watcher: PluginWatcher | undefined
  let supervision: NodeJS.Timeout | undefined
  let persisting: Promise<void> = Promise.resolve()

  const hostApi =
    options.hostApi ??
    createSandboxedHostApi({
      backends,
      logger,
      grants: createPolicyGrantLookup({
        policies,
        requestOf: (name) => {
          const record = records.get(name)
          return (record?.loading ?? record?.current?.manifest)?.resources
        },
      }),
      config: (name) => records.get(name)?.current?.config,
      callPlugin: (target, fn, args, { chain, deadline, token, signal }) =>
        callInto(target, fn, args, { token, signal, timeoutMs: Math.max(1, deadline - Date.now()) }, chain),
    })

  const loader: PluginLoaderOptions = {
    runners,
    hostApiFor: (name) => hostApi.forPlugin(name),
    config: options.config,
  }

  function describeWasm(file: string): Promise<Manifest> {
    return Promise.reject(
      new PluginError('load_failed', `${path.basename(file)}: bare .wasm plugins are not supported yet`),
    )
  }

  function persist(plugin: string, transition: StateTransition): void {
    persisting = persisting
      .then(() => history.append(plugin, transition))
      .catch((error) =>
        logger.log('warn', 'a state change was not saved', {
          plugin,
          error: PluginError.from(error).message,
        }),
      )
  }

  async function addRecord(name: string, source: string): Promise<ManagedPlugin> {
    const earlier = await history.list(name, historySize).catch(() => [])
    const record: ManagedPlugin = {
      name,
      path: source,
      lifecycle: new PluginLifecycle({
        plugin: name,
        historySize,
        history: earlier,
        onTransition: (transition) => {
          persist(name, transition)
          events.emit({ type: 'plugin.state', plugin: name, ...transition })
          logger.log(transition.to === 'failed' ? 'warn' : 'info', `${transition.from} → ${transition.to}`, {
            plugin: name,
            reason: transition.reason,
          })
        },
      }),
      metrics: new PluginCallMetrics(),
      live: new Set(),
      loadOrder: 0,
      queue: Promise.resolve(),
    }
    records.set(name, record)
    return record
  }

  /** Runs `work` after every earlier operation on the plugin has settled. */
  function exclusive<T>(record: ManagedPlugin, work: () => Promise<T>): Promise<T> {
    const run = record.queue.then(work, work)
    record.queue = run.catch(() => {})
    return run
  }

  function fail(record: ManagedPlugin, error: unknown): PluginError {
    const failure = PluginError.from(error, 'load_failed', record.name)
    record.lastError = failure.toData()
    record.lifecycle.move('failed', failure.rawMessage)
    return failure
  }

  /** Makes `version` the one that takes calls, and follows its runtime's supervision. */
  function install(record: ManagedPlugin, version: PluginVersion): void {
    record.current = version
    record.manifest = version.manifest
    record.live.add(version)
    record.loadOrder = ++loadCounter
    version.watch((change) => {
      if (record.current !== version) return
      if (change.to === 'restarting') record.metrics.restarted()
      // Stops are the manager's own doing, recorded by it.
      if (change.to === 'stopping' || change.to === 'stopped') return
      try {
        record.lifecycle.move(stateOfRuntime[change.to], change.reason)
      } catch (error) {
        logger.log('error', 'a runtime state change did not fit the lifecycle', {
          plugin: record.name,
          error: PluginError.from(error).message,
        })
      }
    })
  }

  /** Stops a version once its calls have finished (or its call timeout has passed). */
  async function retire(record: ManagedPlugin, version: PluginVersion): Promise<void> {
    version.unwatch()
    await version.drain(version.grant.limits.call_timeout + drainSlackMs)
    await version.plugin.shutdown().catch((error) =>
      logger.log('warn', 'a plugin did not shut down cleanly', {
        plugin: record.name,
        error: PluginError.from(error).message,
      }),
    )
    record.live.delete(version)
  }

  /** Loads, registers and initialises one version of the plugin, its host calls granted what it asks for. */
  async function loadVersion(
    record: ManagedPlugin,
    found: DiscoveredPlugin & { ok: true },
    policy: ResourcePolicy,
  ): Promise<PluginVersion> {
    record.loading = found.manifest
    try {
      return await loadPluginVersion(loader, found, policy)
    } finally {
      record.loading = undefined
    }
  }

  /** Loads a plugin not running now (discovered, failed, stopped, blocked) from what discovery found. */
  async function loadRecord(record: ManagedPlugin, found: DiscoveredPlugin & { ok: true }): Promise<void> {
    record.path = found.path
    record.manifest = found.manifest
    const policy = await policies.get(record.name)
    record.policy = policy
    if (policy.status === 'blocked') {
      if (record.lifecycle.state !== 'blocked') record.lifecycle.move('blocked', 'blocked by policy')
      return
    }
    record.lifecycle.move('loading', `loading ${found.manifest.version} from ${found.path}`)
    try {
      const version = await loadVersion(record, found, policy)
      install(record, version)
      record.lifecycle.move('running', `${found.manifest.runtime} plugin ${found.manifest.version} started`)
    } catch (error) {
      fail(record, error)
    }
  }

  /** Reads the plugin's source again; a failure, or a source that now names another plugin, throws. */
  async function reread(record: ManagedPlugin): Promise<DiscoveredPlugin & { ok: true }> {
    const found = await readPluginSource(record.path, hostVersion, describeWasm)
    if (!found.ok) throw found.error
    if (found.manifest.name !== record.name) {
      throw new PluginError(
        'invalid_argument',
        `${found.path} now declares plugin ${found.manifest.name}; load it under that name`,
        { plugin: record.name },
      )
    }
    return found
  }

  /** Loads the plugin again beside the running version, swaps, drains and stops the old one. */
  async function reloadRecord(record: ManagedPlugin, why: string): Promise<void> {
    const old = record.current
    if (old === undefined) {
      const found = await reread(record).catch((error) => {
        throw fail(record, error)
      })
      await loadRecord(record, found)
      if (record.lifecycle.state === 'failed') {
        throw PluginError.fromData(record.lastError ?? { code: 'load_failed', message: 'load failed' })
      }
      return
    }
    try {
      const found = await reread(record)
      const policy = await policies.get(record.name)
      if (policy.status === 'blocked') {
        throw new PluginError('permission_denied', 'blocked by policy', { plugin: record.name })
      }
      const next = await loadVersion(record, found, policy)
      record.policy = policy
      install(record, next)
      record.lifecycle.move('running', `${why}: ${old.manifest.version} → ${next.manifest.version}`)
      await retire(record, old)
    } catch (error) {
      const failure = PluginError.from(error, 'load_failed', record.name)
      record.lastError = failure.toData()
      record.lifecycle.move(
        record.lifecycle.state,
        `reload failed, the running version keeps serving: ${failure.rawMessage}`,
      )
      throw failure
    }
  }

  /** Stops the plugin's running version (calls refused from now on) and moves it to `final`. */
  async function stopRecord(
    record: ManagedPlugin,
    reason: string,
    final: 'stopped' | 'blocked',
  ): Promise<void> {
    const version = record.current
    if (version === undefined) {
      if (final === 'blocked' && record.lifecycle.state !== 'blocked')
        record.lifecycle.move('blocked', reason)
      return
    }
    record.lifecycle.move('stopping', reason)
    record.current = undefined
    await retire(record, version)
    record.lifecycle.move(final, reason)
  }

  async function applyPolicy(record: ManagedPlugin, policy: ResourcePolicy): Promise<void> {
    const previous = record.policy?.status
    record.policy = policy
    const version = record.current
    switch (policyAction(record.lifecycle.state, version !== undefined, previous, policy.status)) {
      case 'stop':
        return stopRecord(record, 'blocked by policy', 'blocked')
      case 'load':
        return loadRecord(record, await reread(record))
      case 'reload':
        return reloadRecord(record, `${policy.status}: started again with its new grant`)
      case 'update': {
        if (version === undefined) return
        const grant = effectiveGrant(version.manifest.resources, policy)
        version.plugin.updateGrant(grant)
        version.grant = grant
        record.lifecycle.move(record.lifecycle.state, `policy ${policy.status} applied live`)
        return
      }
      case 'none':
        return
    }
  }

  /** Health of every running plugin, and policies another replica stored since they were applied here. */
  async function supervise(): Promise<void> {
    for (const record of records.values()) {
      const version = record.current
      if (version !== undefined) {
        record.health = await version.plugin.health().catch((error) => ({
          ready: false,
          message: PluginError.from(error).rawMessage,
        }))
      }
      if (record.policy === undefined || closed) continue
      const stored = await policies.get(record.name).catch(() => undefined)
      if (stored !== undefined && stored.updated_at !== record.policy.updated_at) {
        await exclusive(record, () => applyPolicy(record, stored)).catch((error) =>
          logger.log('warn', 'a stored policy could not be applied', {
            plugin: record.name,
            error: PluginError.from(error).message,
          }),
        )
      }
    }
  }

  function startSupervision(): void {
    let running = false
    supervision = setInterval(() => {
      if (running) return
      running = true
      void supervise().finally(() => {
        running = false
      })
    }, supervisionIntervalMs)
    supervision.unref()
  }

  /** The plugin source a changed file belongs to: a known plugin's, or a new entry of the plugins folder. */
  function sourceOf(changed: string): string | undefined {
    for (const record of records.values()) {
      if (changed === record.path || changed.startsWith(`${record.path}${path.sep}`)) return record.path
    }
    if (options.pluginsDir === undefined) return undefined
    const root = path.resolve(options.pluginsDir)
    const relative = path.relative(root, changed)
    if (relative === '' || relative.startsWith('..')) return undefined
    const top = relative.split(path.sep)[0] as string
    return path.join(root, top)
  }

  function onSourceChanged(source: string): void {
    if (closed) return
    const record = [...records.values()].find((r) => r.path === source)
    if (record === undefined && unloaded.has(source)) return
    const work =
      record === undefined
        ? manager.load(source)
        : exclusive(record, () => reloadRecord(record, 'reloaded after a change on disk'))
    work.catch((error) =>
      logger.log('warn', 'a changed plugin was not (re)loaded', {
        source,
        error: PluginError.from(error).message,
      }),
    )
  }

  function info(record: ManagedPlugin): PluginInfo {
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
      health: record.health,
      metrics: record.metrics.snapshot(inFlight),
      lastError: record.lastError,
      history: record.lifecycle.history,
    }
  }

  function refusal(name: string, record: ManagedPlugin | undefined): PluginError {
    if (closed) return new PluginError('unavailable', 'the plugin manager is closed', { plugin: name })
    if (record === undefined) return new PluginError('not_found', 'no such plugin', { plugin: name })
    const state = record.lifecycle.state
    if (state === 'blocked')
      return new PluginError('permission_denied', 'blocked by policy', { plugin: name })
    return new PluginError('unavailable', `the plugin is ${state}`, { plugin: name })
  }

  /** A call into a plugin: refused unless it runs, counted against its rate, in flight, and in its metrics. */
  async function callInto(
    name: string,
    fn: string,
    args: unknown,
    callOptions: ManagerCallOptions,
    chain?: string[],
  ): Promise<unknown> {
    const record = records.get(name)
    const version = record?.current
    if (closed || record === undefined || version === undefined || record.lifecycle.state === 'quarantined') {
      throw refusal(name, record)
    }
    const started = performance.now()
    try {
      await admitCall(backends.rateLimiter, name, version.grant)
      const runOptions: CallOptions = chain === undefined ? callOptions : { ...callOptions, chain }
      const result = await version.track(() => version.plugin.call(fn, args, runOptions))
      record.metrics.record(performance.now() - started)
      return result
    } catch (error) {
      const failure = PluginError.from(error, 'internal', name)
      record.metrics.record(performance.now() - started, failure.code)
      record.lastError = failure.toData()
      throw failure
    }
  }

  function known(name: string): ManagedPlugin {
    const record = records.get(name)
    if (record === undefined) throw new PluginError('not_found', 'no such plugin', { plugin: name })
    return record
  }

  function refuseWhenClosed(): void {
    if (closed) throw new PluginError('unavailable', 'the plugin manager is closed')
  }

  /** Stores the seed policies of plugins that have none stored: the administrator's decisions win. */
  async function seedPolicies(): Promise<void> {
    const stored = new Set((await policies.list()).map((policy) => policy.plugin))
    for (const seed of options.policies ?? []) {
      if (!stored.has(seed.plugin)) await policies.put(seed, { by: 'seed' })
    }
  }

  async function startAll(): Promise<void> {
    await seedPolicies()
    const found = await discoverPlugins({
      pluginsDir: options.pluginsDir,
      sources: options.sources,
      hostVersion,
      describeWasm,
    })
    const toLoad: Array<[ManagedPlugin, DiscoveredPlugin & { ok: true }]> = []
    for (const entry of found) {
      if (closed) return
      if (entry.ok) {
        toLoad.push([await addRecord(entry.manifest.name, entry.path), entry])
        continue
      }
      // A failed source is listed by its folder's name, or its path when that name is taken.
      const name = records.has(entry.name) ? entry.path : entry.name
      fail(await addRecord(name, entry.path), entry.error)
    }
    for (const [record, entry] of toLoad) {
      if (closed) return
      await exclusive(record, () => loadRecord(record, entry))
    }
    const watch = options.watch
    if (watch !== undefined && watch !== false) {
      const paths = [
        ...(options.pluginsDir === undefined ? [] : [path.resolve(options.pluginsDir)]),
        ...(options.sources ?? []).map((source) => path.resolve(source.path)),
      ]
      watcher = watchPluginSources({
        paths,
        debounceMs: (watch === true ? undefined : watch.debounceMs) ?? defaultDebounceMs,
        sourceOf,
        onSourceChanged,
        onError: (error) =>
          logger.log('warn', 'a plugin folder cannot be watched', { error: PluginError.from(error).message }),
      })
      await watcher.ready
    }
    startSupervision()
  }

  const manager: Omit<PluginManager, 'registries' | 'jobs'> = {
    policies,
    hostApi,
    events: { subscribe: events.subscribe },
    async start() {
      refuseWhenClosed()
      starting ??= startAll()
      return starting
    },
    call<Args, Result>(name: string, fn: string, args?: Args, callOptions: ManagerCallOptions = {}) {
      return callInto(name, fn, args, callOptions) as Promise<Result>
    },
    list: () => [...records.values()].map(info),
    get(name) {
      const record = records.get(name)
      return record === undefined ? undefined : info(record)
    },
    async load(source) {
      refuseWhenClosed()
      const found = await readPluginSource(source, hostVersion, describeWasm)
      if (!found.ok) throw found.error
      const name = found.manifest.name
      const existing = records.get(name)
      if (existing?.current !== undefined) {
        throw new PluginError('already_exists', `plugin ${name} is already loaded from ${existing.path}`, {
          plugin: name,
        })
      }
      unloaded.delete(found.path)
      const record = existing ?? (await addRecord(name, found.path))
      await exclusive(record, () => loadRecord(record, found))
      if (record.lifecycle.state === 'failed') {
        throw PluginError.fromData(record.lastError ?? { code: 'load_failed', message: 'load failed' })
      }
      return info(record)
    },
    async unload(name) {
      const record = known(name)
      await exclusive(record, () => stopRecord(record, 'unloaded', 'stopped'))
      records.delete(name)
      unloaded.add(record.path)
    },
    async reload(name) {
      refuseWhenClosed()
      const record = known(name)
      await exclusive(record, () => reloadRecord(record, 'reloaded'))
      return info(record)
    },
    async reset(name) {
      const version = known(name).current
      if (version === undefined) throw refusal(name, records.get(name))
      await version.plugin.reset()
    },
    async setPolicy(input, putOptions) {
      const stored = await policies.put(input, putOptions)
      const record = records.get(stored.plugin)
      if (record !== undefined && !closed) await exclusive(record, () => applyPolicy(record, stored))
      return stored
    },
    close() {
      closed = true
      closing ??= (async () => {
        clearInterval(supervision)
        await watcher?.close()
        await starting?.catch(() => {})
        const running = [...records.values()]
          .filter((record) => record.current !== undefined)
          .sort((a, b) => b.loadOrder - a.loadOrder)
        for (const record of running) {
          await exclusive(record, () => stopRecord(record, 'the host is closing', 'stopped'))
        }
        await Promise.allSettled(runners.owned.map((runner) => runner.close()))
        await persisting
        events.close()
      })()
      return closing
    },
  }
  return manager as PluginManager
}

/** The runners to use: the given ones, and those not given (which the manager then owns and closes). */
/**
 * The runners the manager uses: those given, and for each runtime not given one it creates (and
 * closes with itself) with the host's version, logger and restart options.
 */
function resolveRunners(
  options: PluginManagerOptions,
  logger: Logger,
): Record<PluginRuntime, Runner> & { owned: Runner[] } {
  const owned: Runner[] = []
  const own = <R extends Runner>(runner: R): R => {
    owned.push(runner)
    return runner
  }
  const { runners: given, restart, hostVersion } = options
  return {
    wasm: given?.wasm ?? own(createWasmRunner({ logger, restart })),
    grpc: given?.grpc ?? own(createGrpcRunner({ hostVersion, logger, restart })),
    owned,
  }
}
