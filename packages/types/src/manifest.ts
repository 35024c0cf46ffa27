import type { Permission } from './permission.js'
import type { PluginCapabilities, PluginIdentity } from './registration.js'

/** How a plugin runs. */
export type PluginRuntime = 'wasm' | 'grpc'

/** A WASM plugin's entry: a `.wasm` file inside the plugin's folder. */
export interface WasmEntry {
  wasm: string
}

/** A gRPC plugin started from an executable inside the plugin's folder. */
export interface BinaryEntry {
  binary: string
  args: string[]
  /** Names of host environment variables passed through; nothing else of the host's environment is. */
  env: string[]
}

/** A gRPC plugin written for Node.js: a script inside the plugin's folder, run with the host's own Node. */
export interface NodeEntry {
  node: string
  args: string[]
  /** Names of host environment variables passed through; nothing else of the host's environment is. */
  env: string[]
}

export type PluginEntry = WasmEntry | BinaryEntry | NodeEntry

/**
 * Resources a manifest requests. Unset limits take the policy's value; set ones are capped by it.
 * Times in milliseconds (a manifest writes `250ms`, `30s`, `5m`).
 */
export interface ResourceRequest {
  memory_mb?: number
  call_timeout?: number
  init_timeout?: number
  shutdown_timeout?: number
  max_output_bytes?: number
  permissions: Permission[]
}

/** The WASM instance pool of one plugin. */
export interface WasmPoolOptions {
  /** At most this many instances, each running one call at a time. Default 4. */
  max_instances: number
  /** Milliseconds a call waits for a free instance before `resource_exhausted`. Default 5000. */
  wait_timeout: number
  /**
   * Milliseconds an instance may stay idle before it is stopped (`corral_shutdown`, then its worker
   * ends); the next call starts one, which runs `corral_init`. Default 30000.
   */
  idle_timeout?: number
}

/**
 * Marks a module to be loaded as an Extism plugin (`fromExtismManifest` sets it), with the memory
 * limits of its Extism manifest. Such a module runs whatever its imports (WASI only, or none).
 */
export interface ExtismOptions {
  /** Bounds the Extism kernel's memory (input, output, handles), in 64 KiB pages. */
  max_pages?: number
  /** Bounds the plugin's vars: keys and values together, in bytes. Default 1 MiB. */
  max_var_bytes?: number
  /** The largest HTTP response body `http_request` takes, in bytes. Default 50 MiB. */
  max_http_response_bytes?: number
}

/** A JSON Schema document (draft 2020-12 or draft-07). */
export type JsonSchema = Record<string, unknown>

/** A parsed, validated `plugin.yaml`, defaults filled in. */
export interface Manifest extends PluginIdentity {
  runtime: PluginRuntime
  entry: PluginEntry
  /** Present for `runtime: wasm`. */
  wasm?: { pool: WasmPoolOptions; extism?: ExtismOptions }
  resources: ResourceRequest
  /** JSON Schema the plugin's config must satisfy. */
  config_schema?: JsonSchema
  /** Config defaults; the host's per-plugin config is laid over them. */
  config: Record<string, unknown>
  /**
   * What the plugin adds to the host, for plugins that do not describe themselves in `register()`
   * (a WASM module without `corral_register`). No `permissions`: what a plugin asks for is
   * `resources.permissions`.
   */
  provides?: Partial<Omit<PluginCapabilities, 'permissions'>>
}
