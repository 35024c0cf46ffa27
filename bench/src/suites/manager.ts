import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { createBackends, createPluginManager, type PluginManager } from '@corral/manager'
import type { Plugin, ResourcePolicy, Runner } from '@corral/types'
import { createWasmRunner, defaultIdleTimeoutMs } from '@corral/wasm-runner'
import { compileWat } from '@corral/wasm-runner/testing'
import { type BenchReport, measureLatency } from '../harness.js'
import { echoWat, payload } from './wasm.js'

const quiet = { log() {} }
const idlePlugins = 20
const mb = 1024 * 1024

/** An approved policy under which the bench, not a rate limit, sets the pace. */
function benchPolicy(plugin: string): ResourcePolicy {
  return {
    plugin,
    status: 'approved',
    grants: [],
    // The most a policy allows: far above what one plugin can take.
    rate_limits: { calls_per_second: 1_000_000 },
    limits: { call_timeout: 5_000 },
  } as unknown as ResourcePolicy
}

async function writeEchoPlugin(pluginsDir: string, name: string, wasm: Uint8Array): Promise<void> {
  const dir = path.join(pluginsDir, name)
  await mkdir(dir, { recursive: true })
  await writeFile(path.join(dir, 'echo.wasm'), wasm)
  await writeFile(
    path.join(dir, 'plugin.yaml'),
    `name: ${name}\nversion: 0.1.0\nruntime: wasm\nentry: {wasm: echo.wasm}\nwasm: {pool: {max_instances: 1, wait_timeout: 5s}}\n`,
  )
}

/** The resident set once the heap has settled (GC when exposed), after `waitMs` (1 s by default). */
async function settledRssMb(waitMs = 1_000): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc
  await sleep(waitMs)
  gc?.()
  return process.memoryUsage.rss() / mb
}

/**
 * `host.rss`: the resident set of this host with the manager and no plugin, then with 20 small
 * WASM plugins loaded through it and idle (unused for their default `wasm.pool.idle_timeout`, after
 * which their instances stop); the row says what one idle plugin costs.
 */
async function measureIdlePlugins(report: BenchReport, wasm: Uint8Array): Promise<void> {
  const pluginsDir = await mkdtemp(path.join(tmpdir(), 'corral-bench-idle-'))
  const backends = await createBackends({ sqlitePath: ':memory:' })
  const manager = createPluginManager({ pluginsDir, hostVersion: '1.0.0', backends, logger: quiet })
  try {
    await manager.start()
    const none = report.addMemory('baseline.host.rss', await settledRssMb())
    for (let i = 1; i <= idlePlugins; i++) {
      const name = `idle-${i}`
      await writeEchoPlugin(pluginsDir, name, wasm)
      await manager.load(path.join(pluginsDir, name))
    }
    const loaded = manager.list().filter((p) => p.state === 'running').length
    if (loaded !== idlePlugins) throw new Error(`only ${loaded} of ${idlePlugins} idle plugins run`)
    const rss = await settledRssMb(defaultIdleTimeoutMs + 1_000)
    const perPlugin = (rss - (none.rss_mb ?? 0)) / idlePlugins
    report.addMemory(`host.rss (${idlePlugins} idle WASM; ${perPlugin.toFixed(1)} MB each)`, rss, {
      baseline: none.name,
      maxAboveMb: 150,
    })
  } finally {
    await manager.close()
    await backends.close()
    await rm(pluginsDir, { recursive: true, force: true })
  }
}

/**
 * `manager.call`: the same echo plugin called through `manager.call` (policy, rate limit, in-flight
 * tracking, metrics) and through the runner plugin's own `call`, in interleaved rounds so that
 * both see the same machine.
 */
async function measureCalls(report: BenchReport, wasm: Uint8Array): Promise<void> {
  const pluginsDir = await mkdtemp(path.join(tmpdir(), 'corral-bench-manager-'))
  const backends = await createBackends({ sqlitePath: ':memory:' })
  const wasmRunner = createWasmRunner()
  const loaded: Plugin[] = []
  // The manager's own runner, also handing the bench the plugin it loads.
  const runner: Runner = {
    runtime: 'wasm',
    async load(options) {
      const plugin = await wasmRunner.load(options)
      loaded.push(plugin)
      return plugin
    },
    close: () => wasmRunner.close(),
  }
  let manager: PluginManager | undefined
  try {
    await writeEchoPlugin(pluginsDir, 'bench-echo', wasm)
    manager = createPluginManager({
      pluginsDir,
      hostVersion: '1.0.0',
      backends,
      logger: quiet,
      runners: { wasm: runner },
      policies: [benchPolicy('bench-echo')],
    })
    await manager.start()
    const plugin = loaded[0]
    if (plugin === undefined) throw new Error('bench-echo did not load')
    const viaManager = manager
    const latency = (fn: () => unknown) => () => measureLatency(fn, { iterations: 4_000 })
    await report.addInRounds([
      { name: 'manager.call.runner (wasm.call)', measure: latency(() => plugin.call('echo', payload)) },
      {
        name: 'manager.call',
        measure: latency(() => viaManager.call('bench-echo', 'echo', payload)),
        baseline: 'manager.call.runner (wasm.call)',
        target: { kind: 'max_ratio', value: 1.05 },
      },
    ])
  } finally {
    await manager?.close()
    await wasmRunner.close()
    await backends.close()
    await rm(pluginsDir, { recursive: true, force: true })
  }
}

/** The manager rows of docs/performance.md: `host.rss` and `manager.call`. */
export default async function manager(report: BenchReport): Promise<void> {
  const wasm = await compileWat(echoWat)
  await measureIdlePlugins(report, wasm)
  await measureCalls(report, wasm)
}
