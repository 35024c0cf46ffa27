/**
 * Test support: a runner whose plugins are plain objects the test drives (what a call answers, when
 * the runtime "crashes"), for unit tests of the plugin manager. Real runners are in the integration
 * tests.
 */

import { registrationFromManifest } from '@corral/manifest'
import type {
  CallOptions,
  EffectiveGrant,
  HealthStatus,
  LoadOptions,
  Plugin,
  PluginRuntime,
  Registration,
  Runner,
  RuntimeState,
  RuntimeStateChange,
} from '@corral/types'
import { PluginError } from '@corral/types'

/** What a fake plugin's `call` does: answer, throw, or wait for the test. */
export type FakeCallHandler = (fn: string, args: unknown, options: CallOptions) => Promise<unknown> | unknown

/** One loaded fake plugin, with what happened to it. */
export class FakePlugin implements Plugin {
  readonly name: string
  readonly runtime: PluginRuntime
  readonly version: string
  readonly load: LoadOptions
  state: RuntimeState = 'running'
  readonly grants: EffectiveGrant[] = []
  readonly inits: Record<string, unknown>[] = []
  readonly calls: string[] = []
  resets = 0
  shutDown = false
  readonly #listeners = new Set<(change: RuntimeStateChange) => void>()
  readonly #log: string[]
  readonly #handler: () => FakeCallHandler

  constructor(load: LoadOptions, log: string[], handler: () => FakeCallHandler) {
    this.load = load
    this.name = load.manifest.name
    this.runtime = load.manifest.runtime
    this.version = load.manifest.version
    this.grants.push(load.grant)
    this.#log = log
    this.#handler = handler
  }

  /** What the manifest's `provides` says, as a WASM module without `corral_register` does. */
  async register(): Promise<Registration> {
    return registrationFromManifest(this.load.manifest)
  }

  async init(config: Record<string, unknown>): Promise<void> {
    this.inits.push(config)
    this.#log.push(`init ${this.name}@${this.version}`)
  }

  async call(fn: string, args?: unknown, options: CallOptions = {}): Promise<unknown> {
    if (this.shutDown) throw new PluginError('unavailable', 'shut down', { plugin: this.name })
    this.calls.push(fn)
    return this.#handler()(fn, args, options)
  }

  async callBytes(): Promise<Uint8Array> {
    throw new PluginError('unimplemented', 'not in the fake', { plugin: this.name })
  }

  async health(): Promise<HealthStatus> {
    return { ready: !this.shutDown }
  }

  onStateChange(listener: (change: RuntimeStateChange) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** What the runner's supervision would report. */
  emitState(to: RuntimeState, reason: string): void {
    const change = { from: this.state, to, reason, at: Date.now() }
    this.state = to
    for (const listener of this.#listeners) listener(change)
  }

  async reset(): Promise<void> {
    this.resets += 1
    if (this.state === 'quarantined') {
      this.emitState('restarting', 'reset by an administrator')
      this.emitState('running', 'restarted')
    }
  }

  updateGrant(grant: EffectiveGrant): void {
    this.grants.push(grant)
  }

  async shutdown(): Promise<void> {
    this.shutDown = true
    this.#log.push(`shutdown ${this.name}@${this.version}`)
  }
}

/** A runner of fake plugins; `failLoad` refuses chosen loads, `handler` answers calls. */
export class FakeRunner implements Runner {
  readonly runtime: PluginRuntime
  readonly loaded: FakePlugin[] = []
  /** Load, init and shutdown, in order, across plugins. */
  readonly log: string[] = []
  handler: FakeCallHandler = (fn, args) => ({ fn, args })
  failLoad: (options: LoadOptions) => boolean = () => false
  closed = false

  constructor(runtime: PluginRuntime = 'wasm') {
    this.runtime = runtime
  }

  async load(options: LoadOptions): Promise<Plugin> {
    if (this.failLoad(options)) {
      throw new PluginError('load_failed', 'the fake refuses this load', { plugin: options.manifest.name })
    }
    const plugin = new FakePlugin(options, this.log, () => this.handler)
    this.loaded.push(plugin)
    this.log.push(`load ${plugin.name}@${plugin.version}`)
    return plugin
  }

  /** The latest loaded plugin of this name. */
  latest(name: string): FakePlugin {
    const plugin = this.loaded.filter((p) => p.name === name).at(-1)
    if (plugin === undefined) throw new Error(`no fake plugin ${name} was loaded`)
    return plugin
  }

  async close(): Promise<void> {
    this.closed = true
  }
}
