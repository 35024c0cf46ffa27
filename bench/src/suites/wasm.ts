import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { defaultLimits, defaultRateLimits, loadManifest } from '@corral/manifest'
import type { EffectiveGrant, HostCallHandler, Manifest, Plugin } from '@corral/types'
import { createWasmRunner, type WasmRunner } from '@corral/wasm-runner'
import { compileWat } from '@corral/wasm-runner/testing'
import type { BenchReport } from '../harness.js'
import { measureLatency, measureThroughput, summarize } from '../harness.js'
import { startAtomicsEcho, startPostMessageEcho } from '../raw-echo.js'

/**
 * A Corral ABI echo plugin in WAT. `corral_alloc` hands out a bump region that starts over for each
 * call's input (outside a call), so a long benchmark never grows memory; `lookup` makes one
 * `cache.get` host call and returns its response.
 */
export const echoWat = `(module
  (import "corral" "host_call" (func $host_call (param i32 i32 i32 i32) (result i64)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))
  (global $in_call (mut i32) (i32.const 0))
  (data (i32.const 1024) "cache.get")
  (func (export "corral_abi_version") (result i32) (i32.const 1))
  (func (export "corral_alloc") (param $size i32) (result i32)
    (local $ptr i32) (local $end i32)
    (if (i32.eqz (global.get $in_call)) (then (global.set $heap (i32.const 65536))))
    (local.set $ptr (global.get $heap))
    (local.set $end (i32.add (local.get $ptr) (local.get $size)))
    (if (i32.gt_u (local.get $end) (i32.mul (memory.size) (i32.const 65536)))
      (then
        (if (i32.eq (memory.grow (i32.add (i32.shr_u (local.get $size) (i32.const 16)) (i32.const 1))) (i32.const -1))
          (then (return (i32.const 0))))))
    (global.set $heap (local.get $end))
    (local.get $ptr))
  (func (export "echo") (param $ptr i32) (param $len i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32)) (i64.extend_i32_u (local.get $len))))
  (func (export "lookup") (param $ptr i32) (param $len i32) (result i64)
    (local $out i64)
    (global.set $in_call (i32.const 1))
    (local.set $out (call $host_call (i32.const 1024) (i32.const 9) (local.get $ptr) (local.get $len)))
    (global.set $in_call (i32.const 0))
    (local.get $out)))`

export const payload = { text: 'x'.repeat(80), n: 1 }
const here = path.dirname(fileURLToPath(import.meta.url))
const helloWasm = path.resolve(here, '../../../examples/plugins/hello-wasm')

function grantFor(plugin: string): EffectiveGrant {
  return {
    plugin,
    status: 'approved',
    permissions: [],
    limits: {
      ...defaultLimits,
      memory_mb: 16,
      call_timeout: 5_000,
      init_timeout: 10_000,
      shutdown_timeout: 2_000,
      max_output_bytes: 1 << 20,
    },
    rate_limits: { ...defaultRateLimits },
    secret_config_keys: [],
    env: [],
    unauthenticated_transport: false,
  }
}

function echoManifest(name: string, maxInstances: number): Manifest {
  return {
    name,
    version: '0.1.0',
    runtime: 'wasm',
    entry: { wasm: 'echo.wasm' },
    wasm: { pool: { max_instances: maxInstances, wait_timeout: 5_000 } },
    resources: { permissions: [] },
    config: {},
  }
}

/** The part of the WebAssembly JS API the same-thread baseline uses (bench's tsconfig has no DOM lib). */
interface WasmApi {
  instantiate(bytes: Uint8Array, imports: object): Promise<{ instance: { exports: Record<string, unknown> } }>
}

/** The same echo on the measuring thread: JSON encode, copy in, call, copy out, JSON decode. */
async function sameThreadEcho(wasm: Uint8Array): Promise<() => unknown> {
  const api = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly
  const { instance } = await api.instantiate(wasm, { corral: { host_call: () => 0n } })
  const { exports } = instance
  const memory = exports.memory as { buffer: ArrayBuffer }
  const alloc = exports.corral_alloc as (size: number) => number
  const echo = exports.echo as (ptr: number, len: number) => bigint
  const encoder = new TextEncoder()
  const decoder = new TextDecoder()
  return () => {
    const input = encoder.encode(JSON.stringify(payload))
    const ptr = alloc(input.length)
    new Uint8Array(memory.buffer).set(input, ptr)
    const packed = echo(ptr, input.length)
    const outPtr = Number(packed >> 32n)
    const outLen = Number(packed & 0xffffffffn)
    return JSON.parse(decoder.decode(new Uint8Array(memory.buffer, outPtr, outLen)))
  }
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** A module that differs from `wasm` only by a custom section: same code, another content hash. */
function variant(wasm: Uint8Array, i: number): Uint8Array {
  const name = new TextEncoder().encode(`bench-${i}`)
  const section = new Uint8Array([0, name.length + 1, name.length, ...name])
  const out = new Uint8Array(wasm.length + section.length)
  out.set(wasm)
  out.set(section, wasm.length)
  return out
}

/**
 * `wasm.load`: compile + instantiate + init of hello-wasm, with the module not yet compiled (cold)
 * and with it in the runner's cache. Between loads the runner gets time to start its spare worker,
 * as a host between two plugin loads would; that wait is not timed.
 */
async function measureLoads(report: BenchReport, dir: string): Promise<void> {
  const { manifest } = await loadManifest(helloWasm)
  if (!('wasm' in manifest.entry)) throw new Error('hello-wasm is a WASM plugin')
  const original = new Uint8Array(await readFile(path.join(helloWasm, manifest.entry.wasm)))
  const runner = createWasmRunner()
  const hostApi: HostCallHandler = async () => ({})
  const loadOnce = async (variantDir: string) => {
    await pause(400)
    const t0 = performance.now()
    const plugin = await runner.load({ manifest, dir: variantDir, grant: grantFor(manifest.name), hostApi })
    await plugin.init({ greeting: 'Hello' })
    const elapsed = (performance.now() - t0) * 1000
    await plugin.shutdown()
    return elapsed
  }
  try {
    const iterations = 20
    const dirs: string[] = []
    for (let i = 0; i <= iterations; i++) {
      const variantDir = path.join(dir, `hello-${i}`)
      await mkdir(path.join(variantDir, 'build'), { recursive: true })
      await writeFile(path.join(variantDir, 'build', 'plugin.wasm'), variant(original, i))
      dirs.push(variantDir)
    }
    const cold: number[] = []
    let start = performance.now()
    for (const variantDir of dirs.slice(1)) cold.push(await loadOnce(variantDir))
    report.add('wasm.load.cold', summarize(cold, (performance.now() - start) / 1000), {
      kind: 'max_us',
      value: 10_000,
    })
    const cached: number[] = []
    start = performance.now()
    await loadOnce(dirs[0] as string)
    for (let i = 0; i < iterations; i++) cached.push(await loadOnce(dirs[0] as string))
    report.add('wasm.load.cached', summarize(cached, (performance.now() - start) / 1000), {
      kind: 'max_us',
      value: 2_000,
    })
  } finally {
    await runner.close()
  }
}

/** Loads the echo plugin of `dir`/echo.wasm under `name`, with a pool of `maxInstances`, and inits it. */
export async function loadEcho(
  runner: WasmRunner,
  dir: string,
  name: string,
  maxInstances: number,
): Promise<Plugin> {
  const plugin = await runner.load({
    manifest: echoManifest(name, maxInstances),
    dir,
    grant: grantFor(name),
    hostApi: async () => ({ value: null }),
  })
  await plugin.init({})
  return plugin
}

/**
 * The Corral WASM rows of docs/performance.md, each in rounds with its baseline: `wasm.call` (one
 * echo at a time, worker isolation) against a raw Atomics round trip plus the same echo on this
 * thread; `wasm.host_call` against `wasm.call`; `wasm.call.bytes` (1 KiB in and out through
 * `callBytes`) against a raw Atomics round trip carrying 1 KiB; `wasm.throughput` (64 in flight,
 * pool of 2) against the raw postMessage pipeline, and `wasm.calls.16_plugins` (16 plugins, 64 in
 * flight in all) against `wasm.throughput`, beside the raw pipeline over 16 workers (its floor);
 * `wasm.load` cold and cached. (`wasm.call` against Extism's `runInWorker` is in `wasm-extism.ts`.)
 */
export default async function wasm(report: BenchReport): Promise<void> {
  const echo = await compileWat(echoWat)
  const dir = await mkdtemp(path.join(tmpdir(), 'corral-bench-wasm-'))
  const runner = createWasmRunner()
  const atomics = startAtomicsEcho(0)
  const atomicsKib = startAtomicsEcho(1024)
  const postMessage = startPostMessageEcho()
  try {
    await writeFile(path.join(dir, 'echo.wasm'), echo)
    const jsonEcho = await sameThreadEcho(echo)
    const latency =
      (fn: () => unknown, iterations = 3_000) =>
      () =>
        measureLatency(fn, { iterations })
    const throughput = (fn: () => Promise<unknown>) => () =>
      measureThroughput(fn, { total: 20_000, inFlight: 64 })

    const single = await loadEcho(runner, dir, 'bench-echo', 1)
    await report.addInRounds([
      { name: 'baseline.worker.atomics', measure: latency(atomics.roundTrip) },
      { name: 'baseline.wasm.json_echo', measure: latency(jsonEcho, 20_000) },
      { name: 'baseline.worker.postMessage', measure: latency(postMessage.roundTrip) },
      {
        name: 'baseline.atomics+json_echo',
        measure: latency(() => {
          jsonEcho()
          return atomics.roundTrip()
        }),
      },
      {
        name: 'wasm.call',
        measure: latency(() => single.call('echo', payload)),
        baseline: 'baseline.atomics+json_echo',
        target: { kind: 'max_ratio', value: 1.25 },
      },
      {
        name: 'wasm.host_call',
        measure: latency(() => single.call('lookup', { key: 'greetings:Ada' })),
        baseline: 'wasm.call',
        target: { kind: 'max_ratio', value: 2 },
      },
    ])
    // The bytes path: 1 KiB in and out, no JSON on either side.
    const kib = new Uint8Array(1024).map((_, i) => i & 0xff)
    await report.addInRounds([
      { name: 'baseline.worker.atomics.1kib', measure: latency(atomicsKib.roundTrip) },
      {
        name: 'wasm.call.bytes',
        measure: latency(() => single.callBytes('echo', kib)),
        baseline: 'baseline.worker.atomics.1kib',
        target: { kind: 'max_ratio', value: 1.25 },
      },
    ])
    await single.shutdown()

    const pooled = await loadEcho(runner, dir, 'bench-echo', 2)
    // One at a time: sixteen instantiations at once can outlast the init timeout on a busy machine.
    const many: Plugin[] = []
    for (let i = 0; i < 16; i++) many.push(await loadEcho(runner, dir, `bench-echo-${i}`, 1))
    let next = 0
    // The floor of the 16 plugins' row: the raw pipeline spread over 16 workers, 4 in flight on each.
    const postMessage16 = startPostMessageEcho(16)
    await report.addInRounds([
      { name: 'baseline.worker.postMessage.64', measure: throughput(postMessage.roundTrip) },
      {
        name: 'baseline.worker.postMessage.16_workers',
        measure: throughput(postMessage16.roundTrip),
        baseline: 'baseline.worker.postMessage.64',
        byOps: true,
      },
      {
        name: 'wasm.throughput',
        measure: throughput(() => pooled.call('echo', payload)),
        baseline: 'baseline.worker.postMessage.64',
        target: { kind: 'min_ratio', value: 1 },
      },
      {
        name: 'wasm.calls.16_plugins',
        // Each call goes to the next plugin: 4 in flight on each.
        measure: throughput(() => (many[next++ % many.length] as Plugin).call('echo', payload)),
        baseline: 'wasm.throughput',
        target: { kind: 'min_ratio', value: 0.8 },
      },
    ])
    await Promise.all([postMessage16.close(), ...[pooled, ...many].map((p) => p.shutdown())])

    await measureLoads(report, dir)
  } finally {
    await Promise.all([atomics.close(), atomicsKib.close(), postMessage.close()])
    await runner.close()
    await rm(dir, { recursive: true, force: true })
  }
}
