/**
 * Test support: WASM plugins written in WAT, compiled at test time with wabt, written to a temp
 * folder with a manifest and a grant. Not part of the package's entry.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { defaultLimits, defaultRateLimits } from '@corral/manifest'
import type { EffectiveGrant, HostCallHandler, Manifest, Permission, ResourceLimits } from '@corral/types'
import wabtInit from 'wabt'

let wabt: ReturnType<typeof wabtInit> | undefined

/** Compiles WebAssembly text to a binary. */
export async function wat2wasm(source: string): Promise<Uint8Array> {
  wabt ??= wabtInit()
  const module = (await wabt).parseWat('plugin.wat', source, {
    multi_value: true,
    bulk_memory: true,
    threads: true,
  })
  try {
    module.validate()
    return module.toBinary({}).buffer
  } finally {
    module.destroy()
  }
}

/**
 * A Corral ABI v1 module: the given imports and body inside the ABI's boilerplate (memory of
 * `pages` pages, `corral_abi_version`, a bump `corral_alloc` that grows memory and answers 0 when
 * it cannot, `$pack`, `$out` for a string constant, and `echo`).
 */
export function corralWat(
  body: string,
  options: { imports?: string; pages?: number; version?: number } = {},
): string {
  return `(module
  (import "corral" "host_call" (func $host_call (param i32 i32 i32 i32) (result i64)))
  (import "corral" "error" (func $error (param i32 i32)))
  (import "corral" "log" (func $log (param i32 i32 i32)))
  ${options.imports ?? ''}
  (memory (export "memory") ${options.pages ?? 2})
  (global $heap (mut i32) (i32.const 65536))
  (func (export "corral_abi_version") (result i32) (i32.const ${options.version ?? 1}))
  (func $alloc (export "corral_alloc") (param $size i32) (result i32)
    (local $ptr i32) (local $end i32) (local $have i32)
    (local.set $ptr (global.get $heap))
    (local.set $end (i32.add (local.get $ptr) (local.get $size)))
    (local.set $have (i32.mul (memory.size) (i32.const 65536)))
    (if (i32.gt_u (local.get $end) (local.get $have))
      (then
        (if (i32.eq
              (memory.grow (i32.add (i32.shr_u (i32.sub (local.get $end) (local.get $have)) (i32.const 16)) (i32.const 1)))
              (i32.const -1))
          (then (return (i32.const 0))))))
    (global.set $heap (local.get $end))
    (local.get $ptr))
  (func $pack (param $ptr i32) (param $len i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32)) (i64.extend_i32_u (local.get $len))))
  (func (export "echo") (param i32 i32) (result i64) (call $pack (local.get 0) (local.get 1)))
  ${body}
)`
}

/**
 * A Corral ABI v1 module that describes itself: its `corral_register` returns `registration` as
 * JSON (kept at offset 1024), beside `body`.
 */
export function registeringWat(registration: object, body = ''): string {
  const json = JSON.stringify(registration)
  const escaped = [...new TextEncoder().encode(json)]
    .map((b) => `\\${b.toString(16).padStart(2, '0')}`)
    .join('')
  return corralWat(`
  (data (i32.const 1024) "${escaped}")
  (func (export "corral_register") (param i32 i32) (result i64)
    (call $pack (i32.const 1024) (i32.const ${new TextEncoder().encode(json).length})))
  ${body}`)
}

/** Limits generous enough for tests, small enough to hit on purpose. */
export const testLimits: ResourceLimits = {
  ...defaultLimits,
  memory_mb: 4,
  call_timeout: 5_000,
  init_timeout: 10_000,
  shutdown_timeout: 2_000,
  max_output_bytes: 1 << 20,
}

/** A plugin on disk, ready for `runner.load`. */
export interface TestPlugin {
  manifest: Manifest
  dir: string
  grant: EffectiveGrant
  hostApi: HostCallHandler
  /** Removes the plugin's folder. */
  remove(): Promise<void>
}

export interface TestPluginOptions {
  name?: string
  maxInstances?: number
  waitTimeoutMs?: number
  /** The manifest's `wasm.pool.idle_timeout`; default the runner's. */
  idleTimeoutMs?: number
  limits?: Partial<ResourceLimits>
  permissions?: Permission[]
  hostApi?: HostCallHandler
  /** Folders to create inside the plugin's folder, with files. */
  files?: Record<string, string>
}

/** Writes `wasm` (or WAT source) as a plugin in a fresh temp folder. */
export async function writeTestPlugin(
  module: Uint8Array | string,
  options: TestPluginOptions = {},
): Promise<TestPlugin> {
  const bytes = typeof module === 'string' ? await wat2wasm(module) : module
  const dir = await mkdtemp(path.join(tmpdir(), 'corral-wasm-'))
  await writeFile(path.join(dir, 'plugin.wasm'), bytes)
  for (const [file, content] of Object.entries(options.files ?? {})) {
    await mkdir(path.dirname(path.join(dir, file)), { recursive: true })
    await writeFile(path.join(dir, file), content)
  }
  const name = options.name ?? 'test-plugin'
  const permissions = options.permissions ?? []
  const manifest: Manifest = {
    name,
    version: '0.1.0',
    runtime: 'wasm',
    entry: { wasm: 'plugin.wasm' },
    wasm: {
      pool: {
        max_instances: options.maxInstances ?? 1,
        wait_timeout: options.waitTimeoutMs ?? 2_000,
        ...(options.idleTimeoutMs === undefined ? {} : { idle_timeout: options.idleTimeoutMs }),
      },
    },
    resources: { permissions },
    config: {},
  }
  const grant: EffectiveGrant = {
    plugin: name,
    status: 'approved',
    permissions,
    limits: { ...testLimits, ...options.limits },
    rate_limits: { ...defaultRateLimits },
    secret_config_keys: [],
    env: [],
    unauthenticated_transport: false,
  }
  const hostApi: HostCallHandler = options.hostApi ?? (async () => ({}))
  return { manifest, dir, grant, hostApi, remove: () => rm(dir, { recursive: true, force: true }) }
}
