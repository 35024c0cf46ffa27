import { createHash } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { defaultLimits, effectiveGrant } from '@corral/manifest'
import type { Plugin } from '@corral/types'
import { PluginError } from '@corral/types'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createWasmRunner } from '../../host/wasm-runner.js'
import { compileWat } from '../../testing/extism-plugins.js'
import { failure } from '../../testing/plugin-failure.js'
import { reachedState } from '../../testing/plugin-state.js'
import { fromExtismManifest } from './extism-manifest.js'

/**
 * Modules Extism runs that import nothing of Extism's: one with no imports at all (as Extism's own
 * loop and unreachable test plugins) and one importing WASI only. Loaded from an Extism manifest,
 * they run, trap and time out as any Extism plugin does, in real workers.
 */

const importFree = `(module
  (memory (export "memory") 1)
  (func (export "ok") (result i32) (i32.const 0))
  (func (export "fails") (result i32) (i32.const 3))
  (func (export "unreachable") (result i32) unreachable)
  (func (export "infinite_loop") (result i32) (loop $forever (br $forever)) (i32.const 0)))`

const wasiOnly = `(module
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; Fills 16 bytes with randomness through WASI: 0 when WASI answered.
  (func (export "random") (result i32) (call $random_get (i32.const 64) (i32.const 16)))
  (func (export "infinite_loop") (result i32) (loop $forever (br $forever)) (i32.const 0)))`

const runner = createWasmRunner()
let dir: string

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'corral-extism-any-'))
})

afterAll(async () => {
  await runner.close()
  await rm(dir, { recursive: true, force: true })
})

async function load(name: string, wat: string): Promise<Plugin> {
  const wasm = await compileWat(wat)
  await writeFile(path.join(dir, `${name}.wasm`), wasm)
  const hash = createHash('sha256').update(wasm).digest('hex')
  const { manifest } = await fromExtismManifest(
    { wasm: [{ path: `${name}.wasm`, hash }], timeout_ms: 300 },
    { name, dir },
  )
  const grant = effectiveGrant(manifest.resources, {
    plugin: name,
    status: 'approved',
    grants: [],
    limits: { ...defaultLimits, memory_mb: 16, call_timeout: 5_000, init_timeout: 10_000 },
    rate_limits: { calls_per_second: 1_000, db_queries_per_minute: 1_000, http_requests_per_minute: 1_000 },
  })
  const plugin = await runner.load({
    manifest,
    dir,
    grant,
    hostApi: async (method) => {
      throw new PluginError('unimplemented', `no host method ${method}`)
    },
  })
  await plugin.init(manifest.config)
  return plugin
}

describe('Extism plugins that import nothing of Extism', () => {
  it('runs an import-free module: output-less calls, exit codes, traps, and a loop stopped at its timeout', async () => {
    const plugin = await load('import-free', importFree)
    expect((await plugin.callBytes('ok', new Uint8Array([1, 2]))).length).toBe(0)
    expect(await plugin.call('ok')).toBeNull()
    const exit = await failure(plugin.call('fails'))
    expect(exit.code).toBe('plugin_error')
    expect((await failure(plugin.call('unreachable'))).code).toBe('plugin_trap')
    // A crash restarts the plugin after a backoff, which the next call (300 ms) is not to wait out.
    await reachedState(plugin, 'running')
    // timeout_ms 300 from the Extism manifest: the worker running the loop is stopped.
    expect((await failure(plugin.call('infinite_loop'))).code).toBe('deadline_exceeded')
    await reachedState(plugin, 'running')
    expect(await plugin.call('ok')).toBeNull()
    await plugin.shutdown()
  })

  it('runs a WASI-only module with WASI, and stops its loop at the timeout', async () => {
    const plugin = await load('wasi-only', wasiOnly)
    expect(await plugin.call('random')).toBeNull()
    expect((await failure(plugin.call('infinite_loop'))).code).toBe('deadline_exceeded')
    await reachedState(plugin, 'running')
    expect(await plugin.call('random')).toBeNull()
    await plugin.shutdown()
  })
})
