import { randomUUID } from 'node:crypto'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { isDeepStrictEqual } from 'node:util'
import type { CallOptions, Manifest } from '@corral/types'
import { PluginError, stderrLogger } from '@corral/types'
import { createPolicyGrantLookup } from '../host-api/grant-lookup.js'
import { createSandboxedHostApi } from '../host-api/sandboxed-host-api.js'
import { createSqlPolicyStore } from '../policy-store/policy-store.js'
import { admitCall, callsInKey } from './call-rate.js'
import { resolveRunners } from './default-runners.js'
import { deliverSubscribedEvents, type EventSubscriber } from './event-subscriptions.js'
import { createJobScheduler } from './jobs/job-scheduler.js'
import { exclusive, type ManagedPlugin, markFailed, pluginInfo } from './managed-plugin.js'
import type {
  ManagerCallOptions,
  PluginInfo,
  PluginManager,
  PluginManagerOptions,
  StateTransition,
} from './manager-api.js'
import { createManagerEventHub } from './manager-events.js'
import { createPluginClient } from './plugin-client.js'
import { createPluginContributions } from './plugin-contributions.js'
import { type DiscoveredPlugin, discoverPlugins, isBareWasm, readPluginSource } from './plugin-discovery.js'
import { PluginLifecycle } from './plugin-lifecycle.js'
import type { PluginLoaderOptions } from './plugin-loader.js'
import { PluginCallMetrics } from './plugin-metrics.js'
import { createPluginTransitions } from './plugin-transitions.js'
import { type PluginWatcher, watchPluginSources } from './plugin-watcher.js'
import { createRegistries } from './registries/registries.js'
import { createReplicaCommands, type ReplicaCommand } from './replica-commands.js'
import { describeBareWasm } from './self-described-sources.js'
import { verifyPluginPackage } from './signatures/plugin-signature.js'
import { createSqlStateHistoryStore } from './state-history-store.js'

/** How many state changes each plugin's history keeps, by default. */
const defaultHistorySize = 50
/** The watcher's default quiet time before a changed plugin is reloaded. */
const defaultDebounceMs = 300
/**
 * How often health is asked and policies stored by another replica are looked for. A policy put
 * through a manager applies at once, there and on the replicas its command reaches (the event
 * bus); this look catches one whose command was lost, within this time (and the store's cache).
 */
const supervisionIntervalMs = 2_000

/**
 * Creates the plugin manager: it discovers plugins, loads each with the runner of its runtime under
 * the grant its policy gives, moves each through one lifecycle, applies policy changes live, routes
 * calls with rate limits and metrics, reloads changed plugins without dropping a call, and stops
 * everything in reverse load order. Its `load`, `unload`, `reload` and `reset` run on every replica
 * sharing `backends.events`.
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
  const replicaId = options.replicaId ?? randomUUID()
  const events = createManagerEventHub(backends.events, { replicaId, logger })
  const contributions = createPluginContributions({
    registries: createRegistries({
      hostMenu: options.hostMenu,
      hostTemplates: options.hostTemplates,
      defaultLanguage: options.defaultLanguage,
      onUndeclaredErrorCode: (plugin, code) =>
        logger.log('warn', `the plugin failed with error code ${code}, which it does not declare`, {
          plugin,
        }),
    }),
    // Jobs call in the way hosts do: refused unless the plugin runs, counted against its rate, in
    // its metrics; the job's timeout and abort signal are the call's.
    jobs:
      options.jobs === false
        ? undefined
        : createJobScheduler({
            database: backends.database,
            call: (plugin, fn, args, { timeoutMs, signal }) =>
              callInto(plugin, fn, args, { timeoutMs, signal }),
            onResult: events.emit,
            logger,
            replicaId,
          }),
    groups: options.groups,
    emit: events.emit,
    logger,
  })
  const records = new Map<string, ManagedPlugin>()
  /** Sources unloaded by hand: a change on disk does not bring them back. */
  const unloaded = new Set<string>()
  const runners = resolveRunners(options, logger)
  const stopEventDelivery = deliverSubscribedEvents({
    bus: backends.events,
    subscribers: () => eventSubscribers(),
    call: (plugin, handler, { type, data, plugin: from, at }) =>
      callInto(plugin, handler, { type, data, plugin: from, at }, {}),
    dropped: (plugin) => records.get(plugin)?.metrics.eventDropped(),
    logger,
    queueSize: options.eventQueueSize,
  })
  let closed = false
  let closing: Promise<void> | undefined
  let starting: Promise<void> | undefined
  let watcher: PluginWatcher | undefined
  let supervision: NodeJS.Timeout | undefined
  let persisting: Promise<void> = Promise.resolve()

  const commands = createReplicaCommands(backends.events, { replicaId, logger, run: runSentCommand })

  const hostApi =
    options.hostApi ??
    createSandboxedHostApi({
      backends,
      logger,
      // Every handler is made for one version (hostApiFor), which brings its request and config.
      grants: createPolicyGrantLookup({ policies }),
      callPlugin: (target, fn, args, { chain, deadline, token, signal }) =>
        callInto(target, fn, args, { token, signal, timeoutMs: Math.max(1, deadline - Date.now()) }, chain),
    })

  const loader: PluginLoaderOptions = {
    runners,
    hostApiFor: (name, version) => hostApi.forPlugin(name, version),
    config: options.config,
    extismFunctions: options.extismFunctions,
    verify: options.signatures?.required ? verifySignature : undefined,
  }

  /** Refuses a source that is not signed by a trusted key as it is now, right before it loads. */
  async function verifySignature(source: string): Promise<void> {
    if (isBareWasm(source)) {
      throw new PluginError(
        'permission_denied',
        `${path.basename(source)}: a bare .wasm file carries no signature; signatures are required, so put it in a signed plugin folder`,
      )
    }
    await verifyPluginPackage(source, options.signatures?.trustedKeys ?? [])
  }

  async function describeWasm(file: string): Promise<Manifest> {
    // Describing a module runs it: with signatures required, an unsigned one must not run at all.
    await loader.verify?.(file)
    return describeBareWasm(file)
  }

  const transitions = createPluginTransitions({
    loader,
    policies,
    contributions,
    hostVersion,
    describeWasm,
    logger,
  })

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
      callsInKey: callsInKey(name),
      live: new Set(),
      loadOrder: 0,
      queue: Promise.resolve(),
    }
    records.set(name, record)
    return record
  }

  /** The plugins taking calls now that subscribe to events, with their grants. */
  function* eventSubscribers(): Iterable<EventSubscriber> {
    for (const record of records.values()) {
      const version = record.current
      const subscriptions = version?.registration.events
      if (version === undefined || subscriptions === undefined || subscriptions.length === 0) continue
      if (record.lifecycle.state === 'quarantined') continue
      yield { plugin: record.name, subscriptions, grant: version.grant }
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
      // The store's briefly kept copy tells whether it changed; applying it reads it again.
      const stored = await policies.get(record.name).catch(() => undefined)
      if (stored === undefined || isDeepStrictEqual(stored, record.policy)) continue
      await applyStoredPolicy(record).catch((error) =>
        logger.log('warn', 'a stored policy could not be applied', {
          plugin: record.name,
          error: PluginError.from(error).message,
        }),
      )
    }
  }

  /**
   * Applies the policy stored now, unless it is the one applied here already. It is read past the
   * store's cache in the plugin's turn, so reads and applies happen in order: a read that started
   * earlier cannot answer after a later one and put an older policy back. It is compared whole, not
   * by `updated_at`: two replicas may store different policies in the same millisecond.
   */
  function applyStoredPolicy(record: ManagedPlugin): Promise<void> {
    return exclusive(record, async () => {
      const stored = await policies.get(record.name, { fresh: true })
      if (!isDeepStrictEqual(stored, record.policy)) await transitions.applyPolicy(record, stored)
    })
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
        : exclusive(record, () => transitions.reload(record, 'reloaded after a change on disk'))
    work.catch((error) =>
      logger.log('warn', 'a changed plugin was not (re)loaded', {
        source,
        error: PluginError.from(error).message,
      }),
    )
  }

  function refusal(name: string, record: ManagedPlugin | undefined): PluginError {
    if (closed) return new PluginError('unavailable', 'the plugin manager is closed', { plugin: name })
    if (record === undefined) return new PluginError('not_found', 'no such plugin', { plugin: name })
    const state = record.lifecycle.state
    if (state === 'blocked')
      return new PluginError('permission_denied', 'blocked by policy', { plugin: name })
    return new PluginError('unavailable', `the plugin is ${state}`, { plugin: name })
  }

  /**
   * A call into a plugin: refused unless it runs, counted against its rate, in flight, and in its
   * metrics. The hot path of every call: no `await` of its own (a rate limiter that answers at once
   * is not waited for), one promise on top of the runner's.
   */
  function callInto(
    name: string,
    fn: string,
    args: unknown,
    callOptions: ManagerCallOptions,
    chain?: string[],
  ): Promise<unknown> {
    const record = records.get(name)
    const version = record?.current
    if (closed || record === undefined || version === undefined || record.lifecycle.state === 'quarantined') {
      const refused = refusal(name, record)
      // Counted like a rate-limited call; `lastError` keeps what made the plugin stop.
      record?.metrics.record(0, refused.code)
      return Promise.reject(refused)
    }
    const started = performance.now()
    const runOptions: CallOptions = chain === undefined ? callOptions : { ...callOptions, chain }
    const run = () => version.plugin.call(fn, args, runOptions)
    // In flight on this version from here, its admission included: a reload meanwhile drains this
    // version only once the call is done, instead of stopping it under a call a shared (Redis) rate
    // limiter is still admitting, which would then fail.
    version.entered()
    let running: Promise<unknown>
    try {
      const admitted = admitCall(backends.rateLimiter, name, record.callsInKey, version.grant)
      running = admitted === undefined ? run() : admitted.then(run)
    } catch (error) {
      running = Promise.reject(error)
    }
    return running.then(
      (result) => {
        version.left()
        record.metrics.record(performance.now() - started)
        return result
      },
      (error: unknown) => {
        version.left()
        const failure = PluginError.from(error, 'internal', name)
        // In the metrics only: a call's failure (a caller's bad input, say) is not the plugin's
        // `lastError`, which tells why it does not run.
        record.metrics.record(performance.now() - started, failure.code)
        throw failure
      },
    )
  }

  function known(name: string): ManagedPlugin {
    const record = records.get(name)
    if (record === undefined) throw new PluginError('not_found', 'no such plugin', { plugin: name })
    return record
  }

  function refuseWhenClosed(): void {
    if (closed) throw new PluginError('unavailable', 'the plugin manager is closed')
  }

  function runningVersion(name: string) {
    const version = known(name).current
    if (version === undefined) throw refusal(name, records.get(name))
    return version
  }

  /** Reads a plugin source to load: it must be a plugin, and one not running already. */
  async function readNewSource(source: string): Promise<DiscoveredPlugin & { ok: true }> {
    const found = await readPluginSource(source, hostVersion, describeWasm, logger)
    if (!found.ok) throw found.error
    const name = found.manifest.name
    const existing = records.get(name)
    if (existing?.current !== undefined) {
      throw new PluginError('already_exists', `plugin ${name} is already loaded from ${existing.path}`, {
        plugin: name,
      })
    }
    return found
  }

  async function loadSource(found: DiscoveredPlugin & { ok: true }): Promise<PluginInfo> {
    const name = found.manifest.name
    unloaded.delete(found.path)
    const record = records.get(name) ?? (await addRecord(name, found.path))
    await exclusive(record, () => transitions.load(record, found))
    if (record.lifecycle.state === 'failed') {
      throw PluginError.fromData(record.lastError ?? { code: 'load_failed', message: 'load failed' })
    }
    return pluginInfo(record)
  }

  async function unloadRecord(record: ManagedPlugin, reason: string): Promise<void> {
    await exclusive(record, () => transitions.stop(record, reason, 'stopped'))
    records.delete(record.name)
    unloaded.add(record.path)
  }

  /** Runs here a command another replica sent (see {@link createReplicaCommands}); it throws what fails. */
  async function runSentCommand(command: ReplicaCommand, from: string): Promise<void> {
    if (closed) return
    await startDone()
    const name = command.plugin
    switch (command.action) {
      case 'load': {
        const found = await readNewSource(command.path)
        if (found.manifest.name !== name) {
          const here = `${found.path} declares plugin ${found.manifest.name} here`
          throw new PluginError('invalid_argument', here, { plugin: name })
        }
        await loadSource(found)
        return
      }
      case 'unload':
        return unloadRecord(known(name), `unloaded on replica ${from}`)
      case 'reload': {
        const record = known(name)
        return exclusive(record, () => transitions.reload(record, `reloaded on replica ${from}`))
      }
      case 'reset':
        return runningVersion(name).plugin.reset()
      case 'policy': {
        const record = records.get(name)
        if (record?.policy === undefined) return
        return applyStoredPolicy(record)
      }
    }
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
      logger,
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
      markFailed(await addRecord(name, entry.path), entry.error)
    }
    for (const [record, entry] of toLoad) {
      if (closed) return
      await exclusive(record, () => transitions.load(record, entry))
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

  /**
   * Waits for a start under way to end. A load, unload or reload meanwhile would meet the start's own
   * loads half-way: a plugin loaded twice (the start then fails), or unloaded before the start loads
   * it (and left running, out of the list).
   */
  async function startDone(): Promise<void> {
    await starting?.catch(() => {})
  }

  const manager: PluginManager = {
    policies,
    hostApi,
    registries: contributions.registries,
    jobs: contributions.jobs,
    events: { subscribe: events.subscribe },
    async start() {
      refuseWhenClosed()
      starting ??= startAll()
      return starting
    },
    call<Args, Result>(name: string, fn: string, args?: Args, callOptions: ManagerCallOptions = {}) {
      return callInto(name, fn, args, callOptions) as Promise<Result>
    },
    client: (name) => createPluginClient((fn, args, options) => callInto(name, fn, args, options ?? {})),
    list: () => [...records.values()].map(pluginInfo),
    get(name) {
      const record = records.get(name)
      return record === undefined ? undefined : pluginInfo(record)
    },
    // Each checks the command here, sends it to the other replicas, then runs it here: the caller
    // gets this replica's result; the others run it on their own.
    async load(source) {
      refuseWhenClosed()
      await startDone()
      const found = await readNewSource(source)
      commands.send({ action: 'load', plugin: found.manifest.name, path: found.path })
      return loadSource(found)
    },
    async unload(name) {
      await startDone()
      const record = known(name)
      commands.send({ action: 'unload', plugin: name })
      await unloadRecord(record, 'unloaded')
    },
    async reload(name) {
      refuseWhenClosed()
      await startDone()
      const record = known(name)
      commands.send({ action: 'reload', plugin: name })
      await exclusive(record, () => transitions.reload(record, 'reloaded'))
      return pluginInfo(record)
    },
    async reset(name) {
      const version = runningVersion(name)
      commands.send({ action: 'reset', plugin: name })
      await version.plugin.reset()
    },
    async setPolicy(input, putOptions) {
      const stored = await policies.put(input, putOptions)
      commands.send({ action: 'policy', plugin: stored.plugin })
      const record = records.get(stored.plugin)
      // What the store holds is applied, as on the other replicas: another replica's policy stored
      // just after this one wins here too.
      if (record !== undefined && !closed) await applyStoredPolicy(record)
      return stored
    },
    close() {
      closed = true
      closing ??= (async () => {
        commands.close()
        clearInterval(supervision)
        stopEventDelivery()
        await watcher?.close()
        await starting?.catch(() => {})
        await contributions.close()
        const running = [...records.values()]
          .filter((record) => record.current !== undefined)
          .sort((a, b) => b.loadOrder - a.loadOrder)
        for (const record of running) {
          await exclusive(record, () => transitions.stop(record, 'the host is closing', 'stopped'))
        }
        await Promise.allSettled(runners.owned.map((runner) => runner.close()))
        await persisting
        events.close()
      })()
      return closing
    },
  }
  return manager
}
