import type { Permission } from './permission.js'

/**
 * The limits a plugin runs under. Times are in milliseconds. A manifest may ask for smaller or
 * larger values; the effective value is never above the policy's.
 */
export interface ResourceLimits {
  /** Guest linear memory (WASM) or resident set (gRPC process), in MiB. */
  memory_mb: number
  /** How long one `call` may run. */
  call_timeout: number
  /** How long `init` (and for gRPC plugins, start and handshake) may take. */
  init_timeout: number
  /** How long `shutdown` may take before the plugin is stopped by force. */
  shutdown_timeout: number
  /** The largest result one call may return, in bytes. */
  max_output_bytes: number
  /**
   * The largest argument one host call may carry, in bytes; larger ones are refused at the
   * transport, before the host reads them whole.
   */
  max_host_call_bytes: number
  /**
   * WASM: at most this many instances (the manifest's `wasm.pool.max_instances` is capped by it),
   * so a plugin's memory is at most `max_instances × memory_mb`: the administrator's total, not the
   * author's.
   */
  max_instances: number
  /** WASM: files and directories one instance may hold open through WASI at once. */
  max_open_files: number
  /** Calls running in the plugin at once; more wait in its queue. */
  max_concurrent_calls: number
  /** Calls waiting for a free slot; beyond this a call is refused at once with `resource_exhausted`. */
  max_queued_calls: number
}

/** Per-plugin rate limits; a refusal is `rate_limited` with a retry-after. */
export interface RateLimits {
  calls_per_second: number
  db_queries_per_minute: number
  http_requests_per_minute: number
}

/**
 * Where an administrator stands on a plugin:
 * - `pending_review`: loaded with the restrictive default grant only, until someone decides;
 * - `approved`: the policy's grant as set;
 * - `restricted`: an explicitly smaller grant;
 * - `blocked`: never loaded.
 */
export type PolicyStatus = 'pending_review' | 'approved' | 'restricted' | 'blocked'

/** An administrator's decision about one plugin: what it is granted, and under which limits. */
export interface ResourcePolicy {
  plugin: string
  status: PolicyStatus
  /** What the administrator grants. The effective grant is this intersected with the request. */
  grants: Permission[]
  limits: ResourceLimits
  rate_limits: RateLimits
  /** Config keys whose values are secrets: never returned by `config.get`, never logged. */
  secret_config_keys?: string[]
  /**
   * gRPC: host environment variables the plugin may receive. Its manifest's `entry.env` only asks;
   * a variable reaches the plugin when it is both asked for and named here.
   */
  env?: string[]
  /**
   * gRPC: run this plugin without peer authentication (no AutoMTLS, no peer secrets), for a stock
   * go-plugin plugin that can do neither, such as one built with go-plugin before 1.4.4 that dials
   * the host's broker. Logged at every start: any local process of the host's user can then call
   * the host as this plugin and call this plugin's services.
   */
  unauthenticated_transport?: boolean
  updated_at?: string
  updated_by?: string
}

/**
 * What a plugin actually gets: the intersection of what its manifest requested and what its policy
 * grants. The runners and the sandboxed host API enforce exactly this.
 */
export interface EffectiveGrant {
  plugin: string
  status: PolicyStatus
  permissions: Permission[]
  limits: ResourceLimits
  rate_limits: RateLimits
  secret_config_keys: string[]
  /**
   * Host environment variables the plugin may receive; the gRPC runner passes those of them its
   * manifest's `entry.env` asks for.
   */
  env: string[]
  /** Whether the plugin runs without peer authentication (the policy's logged opt-out). */
  unauthenticated_transport: boolean
}
