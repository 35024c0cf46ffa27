/**
 * Run by the manager suite in a process of its own (`node --expose-gc --import tsx`), so that the
 * bench's earlier suites leave nothing in the resident set it measures: a host's manager with no
 * plugin, then with `count` (argv) small WASM plugins loaded through it and idle (unused for their
 * default `wasm.pool.idle_timeout`, after which their instances stop). Prints both, in MB, as JSON.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { createBackends, createPluginManager } from '@corral/manager'
import { defaultIdleTimeoutMs } from '@corral/wasm-runner'
import { compileWat } from '@corral/wasm-runner/testing'
import { writeEchoPlugin } from './suites/manager.js'
import { echoWat } from './suites/wasm.js'

const mb = 1024 * 1024

/** The resident set once the heap has settled, after `waitMs`. */
async function settledRssMb(waitMs: number): Promise<number> {
  await sleep(waitMs)
  ;(globalThis as { gc?: () => void }).gc?.()
  return process.memoryUsage.rss() / mb
}

const count = Number(process.argv[2])
const wasm = await compileWat(echoWat)
const pluginsDir = await mkdtemp(path.join(tmpdir(), 'corral-bench-idle-'))
const backends = await createBackends({ sqlitePath: ':memory:' })
const manager = createPluginManager({ pluginsDir, hostVersion: '1.0.0', backends, logger: { log() {} } })
try {
  await manager.start()
  const none = await settledRssMb(1_000)
  for (let i = 1; i <= count; i++) {
    await writeEchoPlugin(pluginsDir, `idle-${i}`, wasm)
    await manager.load(path.join(pluginsDir, `idle-${i}`))
  }
  const running = manager.list().filter((p) => p.state === 'running').length
  if (running !== count) throw new Error(`only ${running} of ${count} idle plugins run`)
  const loaded = await settledRssMb(defaultIdleTimeoutMs + 1_000)
  process.stdout.write(JSON.stringify({ none, loaded }))
} finally {
  await manager.close()
  await backends.close()
  await rm(pluginsDir, { recursive: true, force: true })
}
