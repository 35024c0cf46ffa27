import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { createBackends, createPluginManager, type PluginManager } from '@corral/manager'
import type { Plugin, ResourcePolicy, Runner } from '@corral/types'
import { createWasmRunner } from '@corral/wasm-runner'
import { compileWat } from '@corral/wasm-runner/testing'
import { type BenchReport, measureLatency } from '../harness.js'
import { echoWat, payload } from './wasm.js'

const quiet = { log() {} }
const idlePlugins = 20
const run = promisify(execFile)

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

/** Writes a WASM plugin `name` of the echo module `wasm` into `pluginsDir`, with a pool of one. */
export async function writeEchoPlugin(pluginsDir: string, name: string, wasm: Uint8Array): Promise<void> {
  const dir = path.join(pluginsDir, name)
  await mkdir(dir, { recursive: true })
  await writeFile(path.join(dir, 'echo.wasm'), wasm)
  await writeFile(
    path.join(dir, 'plugin.yaml'),
    `name: ${name}\nversion: 0.1.0\nruntime: wasm\nentry: {wasm: echo.wasm}\nwasm: {pool: {max_instances: 1, wait_timeout: 5s}}\n`,
  )
}

const benchDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

/**
 * `host.rss`: the resident set of a host with the manager and no plugin, then with 20 small WASM
 * plugins loaded through it and idle; the row says what one idle plugin costs. Measured in a fresh
 * process (idle-host-rss.ts): in this one, the earlier suites' memory moved the baseline by 100 MB
 * from run to run.
 */
async function measureIdlePlugins(report: BenchReport): Promise<void> {
  const { stdout } = await run(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', 'src/idle-host-rss.ts', String(idlePlugins)],
    { cwd: benchDir },
  )
  const { none, loaded } = JSON.parse(stdout) as { none: number; loaded: number }
  const baseline = report.addMemory('baseline.host.rss', none)
  const perPlugin = (loaded - none) / idlePlugins
  report.addMemory(`host.rss (${idlePlugins} idle WASM; ${perPlugin.toFixed(1)} MB each)`, loaded, {
    baseline: baseline.name,
    maxAboveMb: 150,
  })
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
  await measureIdlePlugins(report)
  await measureCalls(report, wasm)
}
