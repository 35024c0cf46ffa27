import { effectiveGrant } from '@corral/manifest'
import type { Logger, ResourcePolicy } from '@corral/types'
import { PluginError } from '@corral/types'
import type { PolicyStore } from '../policy-store/policy-store.js'
import { type ManagedPlugin, markFailed } from './managed-plugin.js'
import type { PluginContributions } from './plugin-contributions.js'
import { type DiscoveredPlugin, readPluginSource, type WasmDescriber } from './plugin-discovery.js'
import { stateOfRuntime } from './plugin-lifecycle.js'
import { loadPluginVersion, type PluginLoaderOptions } from './plugin-loader.js'
import type { PluginVersion } from './plugin-version.js'
import { policyAction } from './policy-application.js'

/** Beyond its own call timeout, how long a stop waits for a version's calls to finish. */
const drainSlackMs = 1_000

/** What moving plugins between versions needs. */
export interface PluginTransitionsOptions {
  loader: PluginLoaderOptions
  policies: PolicyStore
  contributions: PluginContributions
  hostVersion: string
  describeWasm: WasmDescriber
  logger: Logger
}

/** How a plugin gets, swaps and loses its running version. Each runs inside the plugin's `exclusive` queue. */
export interface PluginTransitions {
  /** Loads a plugin not running now (discovered, failed, stopped, blocked); a failure leaves it `failed`. */
  load(record: ManagedPlugin, found: DiscoveredPlugin & { ok: true }): Promise<void>
  /** Loads it again beside the running version, swaps, drains and stops the old one; a failure keeps the old one. */
  reload(record: ManagedPlugin, why: string): Promise<void>
  /** Stops its running version (calls refused from now on) and moves it to `final`. */
  stop(record: ManagedPlugin, reason: string, final: 'stopped' | 'blocked'): Promise<void>
  /** Applies a stored policy: grant and limits live, or a stop, load or reload (see {@link policyAction}). */
  applyPolicy(record: ManagedPlugin, policy: ResourcePolicy): Promise<void>
  /** Reads the plugin's source again; a failure, or a source that now names another plugin, throws. */
  reread(record: ManagedPlugin): Promise<DiscoveredPlugin & { ok: true }>
}

/**
 * The version changes of every plugin: load, reload (new beside old, swap, drain, stop), stop, and
 * policies applied live, each moving the plugin's lifecycle and its contributions (registries,
 * jobs, groups) with it.
 */
export function createPluginTransitions(options: PluginTransitionsOptions): PluginTransitions {
  const { loader, policies, contributions, hostVersion, describeWasm, logger } = options
  let loadCounter = 0

  /**
   * Makes `version` the one that takes calls, its registration the plugin's registry entries (in
   * one turn: no request finds the new routes with the old version or the reverse), and follows
   * its runtime's supervision. A registry conflict shuts the version down and throws: the version
   * that served before, if any, still does.
   */
  async function install(record: ManagedPlugin, version: PluginVersion): Promise<void> {
    try {
      contributions.mount(record.name, version.registration)
    } catch (error) {
      await version.plugin.shutdown().catch(() => {})
      throw error
    }
    record.current = version
    record.manifest = version.manifest
    record.live.add(version)
    record.loadOrder = ++loadCounter
    version.watch((change) => {
      if (record.current !== version) return
      if (change.to === 'restarting') record.metrics.restarted()
      // Stops are the manager's own doing, recorded by it.
      if (change.to === 'stopping' || change.to === 'stopped') return
      if (change.to === 'quarantined')
        record.lastError = {
          code: 'unavailable',
          message: `quarantined: ${change.reason}`,
          plugin: record.name,
        }
      else if (change.to === 'running') record.lastError = undefined
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

  /** Loads a plugin not running now (discovered, failed, stopped, blocked) from what discovery found. */
  async function loadRecord(record: ManagedPlugin, found: DiscoveredPlugin & { ok: true }): Promise<void> {
    record.path = found.path
    record.manifest = found.manifest
    // Read past the store's cache, like every policy the manager applies: the copy kept there may be
    // older than the policy applied last (one read on another connection that answered sooner).
    const policy = await policies.get(record.name, { fresh: true })
    record.policy = policy
    if (policy.status === 'blocked') {
      if (record.lifecycle.state !== 'blocked') record.lifecycle.move('blocked', 'blocked by policy')
      return
    }
    record.lifecycle.move('loading', `loading ${found.manifest.version} from ${found.path}`)
    try {
      const version = await loadPluginVersion(loader, found, policy)
      await install(record, version)
      record.lastError = undefined
      record.lifecycle.move('running', `${found.manifest.runtime} plugin ${found.manifest.version} started`)
      await contribute(record, version)
    } catch (error) {
      markFailed(record, error)
    }
  }

  /** What a version that now runs adds beyond its registry entries: its jobs and groups. */
  async function contribute(record: ManagedPlugin, version: PluginVersion): Promise<void> {
    await contributions.schedule(record.name, version.registration, version.grant.limits.call_timeout)
    await contributions.ensureGroups(record.name, version.registration)
  }

  /** Reads the plugin's source again; a failure, or a source that now names another plugin, throws. */
  async function reread(record: ManagedPlugin): Promise<DiscoveredPlugin & { ok: true }> {
    const found = await readPluginSource(record.path, hostVersion, describeWasm, logger)
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
        throw markFailed(record, error)
      })
      await loadRecord(record, found)
      if (record.lifecycle.state === 'failed') {
        throw PluginError.fromData(record.lastError ?? { code: 'load_failed', message: 'load failed' })
      }
      return
    }
    try {
      const found = await reread(record)
      const policy = await policies.get(record.name, { fresh: true })
      if (policy.status === 'blocked') {
        throw new PluginError('permission_denied', 'blocked by policy', { plugin: record.name })
      }
      const next = await loadPluginVersion(loader, found, policy)
      await install(record, next)
      record.policy = policy
      record.lastError = undefined
      record.lifecycle.move('running', `${why}: ${old.manifest.version} → ${next.manifest.version}`)
      await contribute(record, next)
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
    contributions.withdraw(record.name)
    await retire(record, version)
    record.lifecycle.move(final, reason)
  }

  async function applyPolicy(record: ManagedPlugin, policy: ResourcePolicy): Promise<void> {
    const previous = record.policy?.status
    record.policy = policy
    const version = record.current
    const loadable = record.manifest !== undefined
    switch (policyAction(record.lifecycle.state, version !== undefined, previous, policy.status, loadable)) {
      case 'stop':
        return stopRecord(record, 'blocked by policy', 'blocked')
      case 'load': {
        // The policy is stored whatever its source says now: one that no longer reads is reported
        // as the plugin's failure, not as the policy's.
        const found = await reread(record).catch((error) => {
          markFailed(record, error)
        })
        if (found !== undefined) await loadRecord(record, found)
        return
      }
      case 'reload':
        return reloadRecord(record, `${policy.status}: started again with its new grant`)
      case 'update': {
        if (version === undefined) return
        const grant = effectiveGrant(version.manifest.resources, policy)
        const timeoutChanged = grant.limits.call_timeout !== version.grant.limits.call_timeout
        version.plugin.updateGrant(grant)
        version.grant = grant
        record.lifecycle.move(record.lifecycle.state, `policy ${policy.status} applied live`)
        // Job timeouts are capped by the call timeout.
        if (timeoutChanged)
          await contributions.schedule(record.name, version.registration, grant.limits.call_timeout)
        return
      }
      case 'none':
        return
    }
  }

  return { load: loadRecord, reload: reloadRecord, stop: stopRecord, applyPolicy, reread }
}
