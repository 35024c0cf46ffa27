import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { parsePolicy } from '@corral/manifest'
import type { ResourcePolicy } from '@corral/types'
import { isPluginError, isPluginErrorCode } from '@corral/types'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type DemoHost, startDemoHost } from './testing/demo-host.js'

/**
 * A soak with chaos over the real example plugins, through the demo host: a steady load on two
 * undisturbed plugins (hello-wasm, hello-grpc: one per runtime) while the two others are disturbed
 * every few seconds (go-kv: SIGKILLed, SIGSTOPped then SIGCONTed; both go-kv and c-wasm: flooded
 * with thousands of calls at once, fed ~5 MB arguments). Bounded: ~45 s of chaos.
 */

const appDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const examplesDir = path.resolve(appDir, '../../examples/plugins')
const quiet = { log() {} }

const chaosMs = 45_000
const roundMs = 3_000
const floodCalls = 2_000
const hugeArgBytes = 5 * 1024 * 1024

/** What this process holds now: threads, descriptors, sockets, child processes. */
function census() {
  const fds = readdirSync('/proc/self/fd')
  const links = fds.flatMap((fd) => {
    try {
      return [readlinkSync(`/proc/self/fd/${fd}`)]
    } catch {
      return [] // Closed while reading (the readdir's own descriptor, for one).
    }
  })
  return {
    threads: readdirSync('/proc/self/task').length,
    fds: links.length,
    sockets: links.filter((link) => link.startsWith('socket:')).length,
    children: childPids(),
  }
}

/** Pids of this process's live children (zombies count as gone). */
function childPids(): number[] {
  const pids = readdirSync('/proc/self/task').flatMap((task) => {
    try {
      return readFileSync(`/proc/self/task/${task}/children`, 'utf8').split(' ').filter(Boolean).map(Number)
    } catch {
      return []
    }
  })
  return pids.filter(isAlive).sort((a, b) => a - b)
}

function isAlive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'))
  } catch {
    return false
  }
}

/** Waits until `check` holds, or gives up after `limitMs` (a hang guard, not a timing assertion). */
async function settle(check: () => boolean, limitMs = 20_000): Promise<void> {
  const start = Date.now()
  while (!check() && Date.now() - start < limitMs) await sleep(100)
}

/** The process id of a gRPC plugin's current process: the child running its binary. */
function pidOf(name: string): number | undefined {
  return childPids().find((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(`/${name}/`)
    } catch {
      return false
    }
  })
}

function signal(pid: number | undefined, name: NodeJS.Signals): void {
  try {
    if (pid !== undefined) process.kill(pid, name)
  } catch {
    // Already gone: the runner restarted it meanwhile.
  }
}

/** The running plugins' names. */
function running(host: DemoHost): string[] {
  return host.manager
    .list()
    .filter((p) => p.state === 'running')
    .map((p) => p.name)
    .sort()
}

describe('a chaos soak over the example plugins (real workers and processes)', () => {
  let pluginsDir: string
  let ownTmp: string
  let previousTmp: string | undefined
  let policies: ResourcePolicy[]

  /** Copies an example plugin's manifest (with call_timeout 5s) and files; links what it imports from. */
  async function copyExample(name: string, files: { copy: string[]; link: string[] }) {
    const from = path.join(examplesDir, name)
    const to = path.join(pluginsDir, name)
    for (const file of files.copy) {
      await mkdir(path.dirname(path.join(to, file)), { recursive: true })
      await copyFile(path.join(from, file), path.join(to, file))
    }
    for (const file of files.link) await symlink(path.join(from, file), path.join(to, file))
    const manifest = await readFile(path.join(from, 'plugin.yaml'), 'utf8')
    await writeFile(path.join(to, 'plugin.yaml'), manifest.replace(/call_timeout: \S+/, 'call_timeout: 5s'))
  }

  async function startHost(): Promise<DemoHost> {
    return startDemoHost({ pluginsDir, hostVersion: '0.1.0', policies, logger: quiet })
  }

  beforeAll(async () => {
    pluginsDir = await mkdtemp(path.join(tmpdir(), 'corral-soak-'))
    // The disturbed plugins as they are; the undisturbed ones with their own code and a roomier
    // call_timeout (5 s, the default policy's most), so that a busy 2-core machine cannot fail
    // their calls by scheduling alone: a stall of seconds, a crash or a refusal still does.
    for (const name of ['c-wasm', 'go-kv'])
      await symlink(path.join(examplesDir, name), path.join(pluginsDir, name))
    await copyExample('hello-wasm', { copy: ['build/plugin.wasm'], link: [] })
    await copyExample('hello-grpc', { copy: ['dist/main.js'], link: ['node_modules'] })
    policies = [
      parsePolicy({
        plugin: 'hello-wasm',
        status: 'approved',
        grants: [{ type: 'cache', scope: ['greetings:*'] }],
      }),
      parsePolicy({
        plugin: 'hello-grpc',
        status: 'approved',
        grants: [
          { type: 'db', access: ['read', 'write'], scope: ['hello_grpc_*'] },
          { type: 'cache', scope: ['*'] },
        ],
      }),
      // The disturbed plugins take any number of calls a second from the host (the manager's
      // calls_per_second), so that a flood reaches their queues rather than stopping at the door.
      parsePolicy({
        plugin: 'c-wasm',
        status: 'approved',
        grants: [],
        rate_limits: { calls_per_second: 1e6 },
      }),
      parsePolicy({
        plugin: 'go-kv',
        status: 'approved',
        grants: [{ type: 'cache', scope: ['kv:*'] }],
        rate_limits: { calls_per_second: 1e6 },
      }),
    ]
    // The runners' socket dirs and SQLite files go here, where nothing else writes, to be counted.
    previousTmp = process.env.TMPDIR
    ownTmp = await mkdtemp(path.join(tmpdir(), 'corral-soak-tmp-'))
    process.env.TMPDIR = ownTmp
  })

  afterAll(async () => {
    if (previousTmp === undefined) delete process.env.TMPDIR
    else process.env.TMPDIR = previousTmp
    await rm(ownTmp, { recursive: true, force: true })
    await rm(pluginsDir, { recursive: true, force: true })
  })

  it('keeps undisturbed plugins serving, settles every disturbed call, and leaks nothing', async () => {
    // Warm-up: one whole host lifetime with every kind of call, so that what a process creates once
    // and keeps (the libuv thread pool, V8's threads, gRPC's timers) is in the baseline.
    const warm = await startHost()
    const warmedUp = running(warm)
    try {
      await Promise.allSettled([
        warm.manager.call('hello-wasm', 'greet', { name: 'warm' }),
        warm.manager.call('hello-grpc', 'echo', { warm: true }),
        warm.manager.call('go-kv', 'get', { key: 'warm' }),
        warm.manager.call('c-wasm', 'count', { text: 'x '.repeat(hugeArgBytes / 2) }),
      ])
    } finally {
      await warm.close()
    }
    expect(warmedUp).toEqual(['c-wasm', 'go-kv', 'hello-grpc', 'hello-wasm'])
    await settle(() => census().children.length === 0)
    const baseline = census()

    const host = await startHost()
    const plugin = (name: string) => ({
      call: (fn: string, args: unknown) => host.manager.call(name, fn, args),
    })
    expect(running(host)).toEqual(['c-wasm', 'go-kv', 'hello-grpc', 'hello-wasm'])
    const seenPids = new Set(census().children)

    // The steady load: one call after another on each undisturbed plugin, every outcome kept.
    let chaos = true
    /** The disturbance of the current round, named in any failure of an undisturbed call. */
    let during = 'warm-up'
    const undisturbed = { calls: 0, failures: [] as string[] }
    const steady = async (name: string, fn: string, args: (i: number) => unknown) => {
      for (let i = 0; chaos; i++) {
        undisturbed.calls++
        const issuedDuring = during
        await plugin(name)
          .call(fn, args(i))
          .catch((error: unknown) =>
            undisturbed.failures.push(`${name}.${fn} issued during ${issuedDuring}: ${String(error)}`),
          )
        // Paced under the default 100 host calls a second (a greet makes two).
        await sleep(50)
      }
    }
    const load = Promise.all([
      steady('hello-wasm', 'greet', (i) => ({ name: `n${i % 10}` })),
      steady('hello-grpc', 'echo', (i) => ({ i })),
    ])

    // Every call at a disturbed plugin, to check each one settles, and how.
    const disturbed = { issued: 0, settled: 0, codes: new Map<string, number>(), raw: [] as unknown[] }
    const disturb = (name: string, fn: string, args: unknown) => {
      disturbed.issued++
      return plugin(name)
        .call(fn, args)
        .then(
          () => {
            disturbed.settled++
          },
          (error: unknown) => {
            disturbed.settled++
            if (isPluginError(error) && isPluginErrorCode(error.code)) {
              disturbed.codes.set(error.code, (disturbed.codes.get(error.code) ?? 0) + 1)
            } else disturbed.raw.push(error)
          },
        )
    }
    const burst = (name: string, fn: string, args: (i: number) => unknown, count: number) => {
      for (let i = 0; i < count; i++) void disturb(name, fn, args(i))
    }

    const disturbances = [
      async function kill() {
        burst('go-kv', 'get', (i) => ({ key: `k${i}` }), 20)
        signal(pidOf('go-kv'), 'SIGKILL')
      },
      async function stopThenContinue() {
        const pid = pidOf('go-kv')
        signal(pid, 'SIGSTOP')
        try {
          burst('go-kv', 'get', (i) => ({ key: `k${i}` }), 20)
          await sleep(1_500)
        } finally {
          signal(pid, 'SIGCONT')
        }
      },
      async function flood() {
        burst('go-kv', 'get', (i) => ({ key: `k${i % 50}` }), floodCalls)
        burst('c-wasm', 'count', () => ({ text: 'one two three' }), floodCalls)
      },
      async function hugeArguments() {
        burst('go-kv', 'set', () => ({ key: 'big', value: 'v'.repeat(hugeArgBytes) }), 1)
        burst('c-wasm', 'count', () => ({ text: 'w '.repeat(hugeArgBytes / 2) }), 1)
      },
    ]
    try {
      const start = Date.now()
      for (let round = 0; Date.now() - start < chaosMs; round++) {
        const roundStart = Date.now()
        const disturbance = disturbances[round % disturbances.length]
        during = disturbance?.name ?? ''
        await disturbance?.()
        for (const pid of census().children) seenPids.add(pid)
        await sleep(Math.max(0, roundMs - (Date.now() - roundStart)))
      }
    } finally {
      chaos = false
      await load
      // Every disturbed call settles: a hung one leaves `settled` short of `issued`.
      await settle(() => disturbed.settled === disturbed.issued, 60_000)
      for (const pid of census().children) seenPids.add(pid)
      await host.close()
    }
    await settle(() => {
      const now = census()
      return now.children.length === 0 && now.threads <= baseline.threads && now.fds <= baseline.fds
    })
    const after = census()
    const leftInTmp = await readdir(ownTmp)

    // Soft: one run reports every broken promise, not only the first.
    expect.soft(undisturbed.calls).toBeGreaterThan(50)
    expect.soft(undisturbed.failures).toEqual([])
    expect.soft(disturbed.settled).toBe(disturbed.issued)
    expect.soft(disturbed.raw).toEqual([])
    // The chaos did reach the disturbed plugins: some of their calls failed, each with a code.
    expect.soft([...disturbed.codes.values()].reduce((a, b) => a + b, 0)).toBeGreaterThan(0)
    expect.soft(seenPids.size).toBeGreaterThan(2)
    expect.soft([...seenPids].filter(isAlive)).toEqual([])
    expect.soft(after.children).toEqual(baseline.children)
    expect.soft(after.threads).toBeLessThanOrEqual(baseline.threads)
    expect.soft(after.fds).toBeLessThanOrEqual(baseline.fds)
    expect.soft(after.sockets).toBeLessThanOrEqual(baseline.sockets)
    expect.soft(leftInTmp).toEqual([])
  }, 180_000)
})
