import { once } from 'node:events'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Worker } from 'node:worker_threads'
import { defaultLimits, effectiveGrant } from '@corral/manifest'
import { createWasmRunner, fromExtismManifest } from '@corral/wasm-runner'
import { compileWat, extismEchoWat } from '@corral/wasm-runner/testing'
import { type BenchReport, type Measurement, measureLatency, type RoundRow, summarize } from '../harness.js'
import { echoWat, loadEcho, payload } from './wasm.js'

/** Extism's JS SDK with `runInWorker`, driven from a thread of its own. */
interface ExtismInWorker {
  /** Times `iterations` echo calls, after a tenth as warm-up (as `measureLatency` does). */
  measure(iterations: number): Promise<Measurement>
  close(): Promise<void>
}

/**
 * Starts Extism's JS SDK with `runInWorker` on the echo plugin, from a thread started without this
 * process's flags: under tsx, Node would try to source-map the SDK's `data:` worker and fail.
 *
 * Each timed call is followed by an untimed `plugin.reset()`. The SDK keeps every call's input and
 * output block until a reset, and each call copies its list of blocks across to its worker and back:
 * without it, a call's cost grew with the calls made before it (a median of 125 µs in the first
 * round, 3.3 ms in the fifth, in one run), so the baseline measured how long the bench had run
 * rather than a call (docs/performance.md: 78 µs). With it, every call sees the plugin as a fresh one.
 */
async function startExtismInWorker(wasm: Uint8Array): Promise<ExtismInWorker> {
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads')
     ;(async () => {
       const { default: createPlugin } = await import(workerData.sdk)
       const plugin = await createPlugin({ wasm: [{ data: workerData.wasm }] }, { useWasi: false, runInWorker: true })
       const call = async () => (await plugin.call('echo', JSON.stringify(workerData.payload)))?.json()
       parentPort.on('message', async (iterations) => {
         if (iterations === null) return plugin.close().then(() => parentPort.postMessage(null))
         for (let i = 0; i < iterations / 10; i++) {
           await call()
           await plugin.reset()
         }
         const samples = []
         for (let i = 0; i < iterations; i++) {
           const t0 = performance.now()
           await call()
           samples.push((performance.now() - t0) * 1000)
           await plugin.reset()
         }
         parentPort.postMessage({ samples, elapsedS: samples.reduce((a, b) => a + b, 0) / 1e6 })
       })
       parentPort.postMessage(null)
     })()`,
    {
      eval: true,
      execArgv: [],
      workerData: { sdk: import.meta.resolve('@extism/extism'), wasm, payload },
    },
  )
  // `once` rejects if the worker fails instead of answering.
  const ask = async <T>(iterations: number | null): Promise<T> => {
    const answer = once(worker, 'message')
    worker.postMessage(iterations)
    return (await answer)[0] as T
  }
  await once(worker, 'message') // the plugin is ready
  return {
    async measure(iterations) {
      const { samples, elapsedS } = await ask<{ samples: number[]; elapsedS: number }>(iterations)
      return summarize(samples, elapsedS)
    },
    async close() {
      await ask(null)
      await worker.terminate()
    },
  }
}

/**
 * `wasm.extism`: the Extism echo plugin under Corral (worker isolation, the runner's pool) against
 * the same plugin under Extism's own JS SDK with `runInWorker`; and `wasm.call.vs_extism`: Corral's
 * own-ABI echo against the same. In rounds, so that all three see the same machine. Each side
 * encodes a ~100-byte JSON payload, calls, and decodes the JSON output.
 */
export default async function wasmExtism(report: BenchReport): Promise<void> {
  const wasm = await compileWat(extismEchoWat)
  const extism = await startExtismInWorker(wasm)
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
    const corralDir = path.join(dir, 'corral')
    await mkdir(corralDir)
    await writeFile(path.join(corralDir, 'echo.wasm'), await compileWat(echoWat))
    const corralEcho = await loadEcho(runner, corralDir, 'bench-echo', 1)
    // Each side runs about as long in a round (Extism's call takes ~6× Corral's), so that a burst
    // of load on a shared machine falls on both alike.
    const iterations = 2_000
    const corralIterations = 6 * iterations
    const rows: RoundRow[] = [
      { name: 'extism.js.runInWorker', measure: () => extism.measure(iterations) },
      {
        name: 'wasm.extism',
        measure: () => measureLatency(() => plugin.call('echo', payload), { iterations: corralIterations }),
        // ≥ 6 × faster than Extism's runInWorker: at most a sixth of its median.
        baseline: 'extism.js.runInWorker',
        target: { kind: 'max_ratio', value: 1 / 6 },
      },
      {
        name: 'wasm.call.vs_extism',
        measure: () =>
          measureLatency(() => corralEcho.call('echo', payload), { iterations: corralIterations }),
        // ≥ 6 × faster than Extism's runInWorker: at most a sixth of its median.
        baseline: 'extism.js.runInWorker',
        target: { kind: 'max_ratio', value: 1 / 6 },
      },
    ]
    // One unrecorded pass of every row first: the first round ran with code still cold (a median
    // twice the later rounds'), which spread the ratios.
    for (const row of rows) await row.measure()
    await report.addInRounds(rows)
  } finally {
    await extism.close()
    await runner.close()
    await rm(dir, { recursive: true, force: true })
  }
}
