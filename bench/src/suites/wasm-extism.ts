import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Worker } from 'node:worker_threads'
import { defaultLimits, effectiveGrant } from '@corral/manifest'
import { createWasmRunner, fromExtismManifest } from '@corral/wasm-runner'
import { compileWat } from '../compile-wat.js'
import type { BenchReport, Measurement } from '../harness.js'
import { measureLatency } from '../harness.js'

/**
 * An Extism-ABI echo plugin, written against the kernel only (no PDK): it copies its input to a
 * kernel block eight bytes at a time and sets that block as its output. Both runtimes below run
 * this same binary.
 */
const echoWat = `(module
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "input_load_u64" (func $input_load_u64 (param i64) (result i64)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (func (export "echo") (result i32)
    (local $n i64) (local $h i64) (local $i i64)
    (local.set $n (call $input_length))
    (local.set $h (call $alloc (local.get $n)))
    (block $done (loop $next
      (br_if $done (i64.gt_u (i64.add (local.get $i) (i64.const 8)) (local.get $n)))
      (call $store_u64 (i64.add (local.get $h) (local.get $i)) (call $input_load_u64 (local.get $i)))
      (local.set $i (i64.add (local.get $i) (i64.const 8)))
      (br $next)))
    (block $done (loop $next
      (br_if $done (i64.ge_u (local.get $i) (local.get $n)))
      (call $store_u8 (i64.add (local.get $h) (local.get $i)) (call $input_load_u8 (local.get $i)))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br $next)))
    (call $output_set (local.get $h) (local.get $n))
    (i32.const 0)))`

/**
 * Times Extism's JS SDK with `runInWorker` on the echo plugin, from a thread of its own started
 * without this process's flags: under tsx, Node would try to source-map the SDK's `data:` worker and
 * fail. Same procedure as `measureLatency`: a tenth as warm-up, then one sample per call.
 */
async function measureExtismInWorker(
  wasm: Uint8Array,
  payload: unknown,
  iterations: number,
): Promise<Measurement> {
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads')
     ;(async () => {
       const { default: createPlugin } = await import(workerData.sdk)
       const plugin = await createPlugin({ wasm: [{ data: workerData.wasm }] }, { useWasi: false, runInWorker: true })
       const call = async () => (await plugin.call('echo', JSON.stringify(workerData.payload)))?.json()
       for (let i = 0; i < workerData.iterations / 10; i++) await call()
       const samples = []
       const start = performance.now()
       for (let i = 0; i < workerData.iterations; i++) {
         const t0 = performance.now()
         await call()
         samples.push((performance.now() - t0) * 1000)
       }
       const elapsedS = (performance.now() - start) / 1000
       await plugin.close()
       parentPort.postMessage({ samples, elapsedS })
     })()`,
    {
      eval: true,
      execArgv: [],
      workerData: { sdk: import.meta.resolve('@extism/extism'), wasm, payload, iterations },
    },
  )
  try {
    const { samples, elapsedS } = await new Promise<{ samples: number[]; elapsedS: number }>(
      (resolve, reject) => {
        worker.once('message', resolve)
        worker.once('error', reject)
      },
    )
    const sorted = samples.sort((a, b) => a - b)
    const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] as number
    return { median_us: at(0.5), p99_us: at(0.99), ops_per_s: iterations / elapsedS }
  } finally {
    await worker.terminate()
  }
}

/**
 * `wasm.extism`: the Extism echo plugin under Corral (worker isolation, the runner's pool) against
 * the same plugin under Extism's own JS SDK with `runInWorker`, in the same run. Both sides encode
 * a ~100-byte JSON payload, call, and decode the JSON output.
 */
export default async function wasmExtism(report: BenchReport): Promise<void> {
  const wasm = await compileWat(echoWat)
  const payload = { text: 'x'.repeat(80), n: 1 }

  const extismRow = report.add('extism.js.runInWorker', await measureExtismInWorker(wasm, payload, 5_000))

  const dir = await mkdtemp(path.join(tmpdir(), 'corral-bench-extism-'))
  const runner = createWasmRunner()
  try {
    await writeFile(path.join(dir, 'echo.wasm'), wasm)
    const { manifest } = await fromExtismManifest(
      { wasm: [{ path: 'echo.wasm' }] },
      { name: 'extism-echo', dir },
    )
    const grant = effectiveGrant(manifest.resources, {
      plugin: manifest.name,
      status: 'approved',
      grants: [],
      limits: {
        ...defaultLimits,
        memory_mb: 16,
        call_timeout: 5_000,
        init_timeout: 10_000,
        shutdown_timeout: 2_000,
        max_output_bytes: 1 << 20,
      },
      rate_limits: { calls_per_second: 1e6, db_queries_per_minute: 1, http_requests_per_minute: 1 },
    })
    const plugin = await runner.load({ manifest, dir, grant, hostApi: async () => ({}) })
    await plugin.init({})
    report.add(
      'wasm.extism',
      await measureLatency(() => plugin.call('echo', payload), { iterations: 20_000 }),
      // ≥ 3 × faster than Extism's runInWorker: at most a third of its median.
      { baseline: extismRow.name, target: { kind: 'max_ratio', value: 0.333 } },
    )
  } finally {
    await runner.close()
    await rm(dir, { recursive: true, force: true })
  }
}
