import type { PluginUser } from '@corral/grpc-runner'
import type {
  CallOptions,
  EffectiveGrant,
  ErrorCodeSpec,
  GroupSpec,
  HealthStatus,
  HttpMethod,
  Logger,
  Manifest,
  MenuItem,
  MenuLocation,
  PluginClient,
  PluginErrorCode,
  PluginErrorData,
  PluginRuntime,
  PluginState,
  Registration,
  ResourcePolicy,
  RestartOptions,
  RouteSpec,
  Runner,
  TemplateSpec,
  WidgetSpec,
} from '@corral/types'
import type { ExtismHostFunctions } from '@corral/wasm-runner/extism'
import type { Backends } from '../backends/create-backends.js'
import type { SandboxedHostApi } from '../host-api/sandboxed-host-api.js'
import type { PolicyStore } from '../policy-store/policy-store.js'

/** Where plugins come from: a folder of plugin folders, or plugin folders named one by one. */
export interface PluginSource {
  /** A plugin folder (with `plugin.yaml`), or a bare `.wasm` file that describes itself. */
  path: string
}

/** Package signatures: ed25519 over a digest of the plugin's files. */
export interface SignatureOptions {
  /** Refuse unsigned or tampered plugins on every load path (start, load, reload). */
  required: boolean
  /** Trusted public keys: PEM (SPKI) or base64 of the raw 32-byte key. */
  trustedKeys: string[]
}

/** Options of {@link createPluginManager}. Everything but `hostVersion` and `backends` has a default. */
export interface PluginManagerOptions {
  /**
   * Each `<pluginsDir>/<name>/plugin.yaml` (or, without one, `<name>/manifest.json`, an Extism
   * manifest) and each bare `<pluginsDir>/*.wasm` carrying `corral_register` is a plugin.
   */
  pluginsDir?: string
  /** Plugin folders or `.wasm` files named one by one (beside or instead of `pluginsDir`). */
  sources?: PluginSource[]
  /** What plugins' `min_host_version` is checked against. */
  hostVersion: string
  /** Where data, policies, job settings and state history live (see `createBackends`). */
  backends: Backends
  /**
   * Policies to store at start, for plugins that have none stored yet: an administrator's later
   * decisions (kept in the database) win over these seeds.
   */
  policies?: ResourcePolicy[]
  logger?: Logger
  /** Per-plugin host config, laid over the manifest's defaults and checked against its schema. */
  config?: (plugin: string) => Record<string, unknown> | undefined
  /**
   * The user host functions (Extism's `functions`) a plugin that runs as an Extism module may
   * import, by plugin name; none where this gives undefined. They run in the host, reading and
   * writing the guest's kernel memory through `CurrentPlugin` (docs/abi.md).
   */
  extismFunctions?: (plugin: string) => ExtismHostFunctions | undefined
  /** Override the runners (default: `createWasmRunner()`, `createGrpcRunner({hostVersion, logger})`). */
  runners?: Partial<Record<PluginRuntime, Runner>>
  /**
   * The OS user gRPC plugin processes run as (the gRPC runner's `pluginUser`), when the manager
   * makes that runner; unset, the host's user.
   */
  pluginUser?: PluginUser
  /** Override the sandboxed host API (default: built over `backends`, the policy store and the manager). */
  hostApi?: SandboxedHostApi
  /** Watch the plugin folders and hot-reload on change. Default false; `debounceMs` default 300. */
  watch?: boolean | { debounceMs?: number }
  signatures?: SignatureOptions
  /** Crash restarts and quarantine, for both runtimes. */
  restart?: Partial<RestartOptions>
  /** Run the plugins' cron jobs (`manager.jobs`). Default true; `false` schedules nothing. */
  jobs?: boolean
  /** The host's own menu items, which plugins' items join and `hidden_menu_items` hide. */
  hostMenu?: MountedMenuItem[]
  /** The host's own templates, which plugins may override. */
  hostTemplates?: TemplateSpec[]
  /** The language translations fall back to. Default `en`. */
  defaultLanguage?: string
  /** Where the groups plugins declare are created when they load (the host's users store). */
  groups?: GroupStore
  /**
   * This manager's name among replicas sharing `backends`: on events relayed from another replica,
   * in the reasons of what another replica's command did here (`reloaded on replica <id>`) and in
   * the job scheduler's log lines. Default: a random id.
   */
  replicaId?: string
  /** How many state changes each plugin's history keeps. Default 50. */
  historySize?: number
  /**
   * How many subscribed events may wait for one plugin's handlers (see `Registration.events`);
   * past it new ones are dropped, counted in `metrics.eventsDropped` and logged. Default 100.
   */
  eventQueueSize?: number
}

/** The host's store of RBAC groups, which the manager fills with the groups plugins declare. */
export interface GroupStore {
  /** Creates the group if it does not exist yet (a plugin loaded again ensures it again). */
  ensure(group: GroupSpec & { plugin: string }): Promise<void>
}

/** One state change of a plugin, as its history keeps it. */
export interface StateTransition {
  /** Epoch milliseconds. */
  at: number
  from: PluginState
  to: PluginState
  reason: string
}

/** A latency histogram: `counts[i]` calls took at most `bounds[i]` ms (the last bucket is unbounded). */
export interface LatencyHistogram {
  bounds: number[]
  counts: number[]
  sum: number
  count: number
}

/** What the manager counted of one plugin's calls. */
export interface PluginMetrics {
  calls: number
  inFlight: number
  /** Failed calls, by error code. */
  errors: Partial<Record<PluginErrorCode, number>>
  latencyMs: LatencyHistogram
  restarts: number
  /** Subscribed events not delivered because its queue was full (its handlers too slow). */
  eventsDropped: number
}

/** Everything the manager knows of one plugin. */
export interface PluginInfo {
  name: string
  state: PluginState
  /** Where it was loaded from. */
  path: string
  runtime?: PluginRuntime
  version?: string
  manifest?: Manifest
  registration?: Registration
  /** The policy in force (the default `pending_review` one if none is stored). */
  policy?: ResourcePolicy
  /** What the manifest asks for vs what the plugin gets. */
  requested?: Manifest['resources']
  grant?: EffectiveGrant
  health?: HealthStatus
  metrics: PluginMetrics
  lastError?: PluginErrorData
  /** Oldest first, at most `historySize`. */
  history: StateTransition[]
}

/** Options of {@link PluginManager.call}. */
export interface ManagerCallOptions extends Omit<CallOptions, 'chain'> {}

/**
 * Everything the manager's event stream carries. State changes and job results of other replicas
 * sharing `backends.events` come too, with their `replica`; registry changes are this replica's.
 */
export type ManagerEvent =
  | {
      type: 'plugin.state'
      plugin: string
      from: PluginState
      to: PluginState
      reason: string
      at: number
      /** The replica it happened on, when not this one. */
      replica?: string
    }
  | { type: 'plugin.event'; plugin: string; event: string; data: unknown; at: number }
  | {
      type: 'job.result'
      plugin: string
      job: string
      ok: boolean
      durationMs: number
      error?: PluginErrorData
      at: number
      /** The replica it ran on, when not this one. */
      replica?: string
    }
  /** A plugin's entries were added to or removed from `registries`. */
  | { type: 'registry.changed'; plugin: string; at: number }

export interface ManagerEvents {
  /** Starts delivering events to `listener` (each isolated from the others' failures); returns the function that stops it. */
  subscribe(listener: (event: ManagerEvent) => void): () => void
}

/**
 * The plugin manager: discovery, one lifecycle for both runtimes, live policy, calls with metrics,
 * hot reload, registries, jobs and events. `load`, `unload`, `reload` and `reset` are an
 * administrator's: each runs here and on every other replica sharing `backends.events` (from the
 * same path there); the promise is this replica's result, and another replica's failure is logged
 * there (a failed load or reload is in that plugin's state and history there).
 *
 * @example
 * const manager = createPluginManager({ pluginsDir, hostVersion: '1.0.0', backends })
 * await manager.start()
 * const out = await manager.call<{ day: string }, Summary>('stats', 'summarize', { day: '2026-11-21' })
 * await manager.close()
 */
export interface PluginManager {
  /** Discovers and loads every plugin; one that fails is reported in its state, never fatal. */
  start(): Promise<void>
  /** Calls a running plugin through its policy (calls per second), with in-flight tracking and metrics. */
  call<Args = unknown, Result = unknown>(
    plugin: string,
    fn: string,
    args?: Args,
    options?: ManagerCallOptions,
  ): Promise<Result>
  /**
   * A typed client of a plugin: its functions as methods, with the argument and result types of the
   * plugin's definition (imported as a type only). Each method is {@link PluginManager.call}.
   *
   * @example
   * import type helloGrpc from '../plugins/hello-grpc/src/plugin.js'
   * const hello = manager.client<typeof helloGrpc>('hello-grpc')
   * const { text, count } = await hello.greet({ name: 'Ada' })
   */
  client<Definition extends { functions: object }>(plugin: string): PluginClient<Definition>
  list(): PluginInfo[]
  get(name: string): PluginInfo | undefined
  /** Loads a plugin folder (or `.wasm`) not loaded yet. */
  load(path: string): Promise<PluginInfo>
  /** Stops a plugin and forgets it until it is loaded again. */
  unload(name: string): Promise<void>
  /** Loads the plugin's folder again beside the running version, swaps, drains and stops the old one. */
  reload(name: string): Promise<PluginInfo>
  /** Lifts a quarantine. */
  reset(name: string): Promise<void>
  /**
   * Stores a policy and applies it live on every replica: grant, limits and status (blocking stops,
   * approving re-inits). Each applies what the store then holds: this policy, or one another
   * replica stored after it.
   */
  setPolicy(policy: unknown, options?: { by?: string }): Promise<ResourcePolicy>
  readonly policies: PolicyStore
  readonly hostApi: SandboxedHostApi
  readonly registries: Registries
  readonly jobs: JobScheduler
  readonly events: ManagerEvents
  /** Stops plugins in reverse load order within their shutdown timeouts; later calls get `unavailable`. */
  close(): Promise<void>
}

/** A route as the host mounts it: `/plugins/<plugin><path>`. */
export interface MountedRoute extends RouteSpec {
  plugin: string
  /** The full path the host serves, with `:param` segments. */
  fullPath: string
}

export interface MountedWidget extends WidgetSpec {
  plugin: string
}

export interface MountedMenuItem extends Omit<MenuItem, 'children'> {
  /** The plugin that added it; absent for the host's own items. */
  plugin?: string
  children: MountedMenuItem[]
}

export interface MountedTemplate extends TemplateSpec {
  /** The plugin that added or overrides it; absent for the host's own templates. */
  plugin?: string
}

export interface MountedErrorCode extends ErrorCodeSpec {
  plugin: string
  /** `<plugin>:<code>`. */
  qualified: string
}

/**
 * What running plugins add to the host, rebuilt atomically as plugins come and go: a reader never
 * sees half of a plugin's entries. A stopped plugin's entries are gone.
 */
export interface Registries {
  routes(): readonly MountedRoute[]
  /** The route that answers `method path`, with its params, if any. */
  matchRoute(
    method: HttpMethod,
    path: string,
  ): { route: MountedRoute; params: Record<string, string> } | undefined
  /** The merged menu of one location: host items, minus hidden ones, plus plugins' items, by order. */
  menu(location: MenuLocation): readonly MountedMenuItem[]
  widgets(): readonly MountedWidget[]
  /** The template of this name: a plugin's override, else the host's or a plugin's addition. */
  template(name: string): MountedTemplate | undefined
  templates(): readonly MountedTemplate[]
  /** Translates `namespace:key` (or `key` in `namespace`) into `language`, falling back to the default language. */
  translate(namespace: string, key: string, language: string, args?: unknown[]): string | undefined
  /** `<plugin>:<code>` → its declaration. */
  errorCode(qualified: string): MountedErrorCode | undefined
  errorCodes(): readonly MountedErrorCode[]
  /**
   * The declaration of `plugin`'s error `code` (bare or `<plugin>:<code>`); for a code the plugin did
   * not declare, an entry with HTTP status 500, and the manager logs it (`warn`).
   */
  errorFor(plugin: string, code: string): MountedErrorCode
  groups(): readonly (GroupSpec & { plugin: string })[]
  landingPage(): { plugin: string; path: string } | undefined
}

/** A job as the scheduler keeps it. */
export interface JobInfo {
  plugin: string
  id: string
  cron: string
  handler: string
  timeoutMs: number
  /** The administrator's switch (persisted); the registration's `enabled` is its default. */
  enabled: boolean
  running: boolean
  /** Scheduled runs skipped because the previous run was still going (counted by this replica). */
  skippedRuns?: number
  /** Epoch milliseconds; none while the job is disabled. */
  nextRunAt?: number
  lastRun?: { at: number; ok: boolean; durationMs: number; error?: PluginErrorData }
}

/** Cron jobs from registrations: per-job timeout, no overlap, once per schedule across replicas. */
export interface JobScheduler {
  list(): JobInfo[]
  /** Enables or disables a job; persisted. */
  setEnabled(plugin: string, job: string, enabled: boolean): Promise<void>
  /** Runs a job now (still never overlapping itself); resolves with the run's result. */
  runNow(plugin: string, job: string): Promise<NonNullable<JobInfo['lastRun']>>
}
