import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { eventually, processesWithCommandLine } from '@corral/grpc-runner/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createBackends } from '../backends/create-backends.js'
import type { RateLimiter } from '../rate-limit/rate-limiter.js'
import {
  approved,
  copyExample,
  editManifest,
  startManager,
  steadyCalls,
  tempPluginsDir,
} from '../testing/plugin-folders.js'
import type { ManagerEvent, PluginManager } from './manager-api.js'
import { createPluginManager } from './plugin-manager.js'

/**
 * Hot reload of real plugins under a steady stream of calls: the new version is loaded beside the
 * old, swapped in, and the old one drained and stopped, so not one call fails. A broken new version
 * leaves the old one serving, and the failure shows in the history and the events.
 */

// Room for the stream's calls and their cache calls: the default of 100 a second is not the subject.
const rateLimits = { rate_limits: { calls_per_second: 10_000 } }
const helloWasmPolicy = approved(
  'hello-wasm',
  [{ type: 'cache', access: ['read', 'write'], scope: ['greetings:*'] }],
  rateLimits,
)
const helloGrpcPolicy = approved(
  'hello-grpc',
  [
    { type: 'db', access: ['read', 'write'], scope: ['hello_grpc_*'] },
    { type: 'cache', access: ['read', 'write'], scope: ['*'] },
  ],
  rateLimits,
)

/** What each example's greeting looks like in its `greet` result. */
const greetingOf: Record<string, (result: unknown) => string> = {
  'hello-wasm': (result) => (result as { message: string }).message,
  'hello-grpc': (result) => (result as { text: string }).text,
}

/**
 * A new version of the plugin: its manifest with another version number and default greeting, and
 * for hello-grpc its program rebuilt with that version (its registration must match the manifest).
 */
async function newVersion(pluginDir: string, version: string, greeting: string): Promise<void> {
  const program = path.join(pluginDir, 'dist/main.js')
  if (path.basename(pluginDir) === 'hello-grpc') {
    const js = await readFile(program, 'utf8')
    await writeFile(program, js.replace(/^ {2}version: ".*",$/m, `  version: "${version}",`))
  }
  await editManifest(pluginDir, (yaml) =>
    yaml
      .replace(/^version: .*$/m, `version: ${version}`)
      .replace(/^ {2}greeting: .*$/m, `  greeting: ${greeting}`),
  )
}

function reloadFailures(events: ManagerEvent[], plugin: string): string[] {
  return events.flatMap((event) =>
    event.type === 'plugin.state' && event.plugin === plugin && /reload failed/.test(event.reason)
      ? [`${event.from}→${event.to}`]
      : [],
  )
}

describe.each(['hello-wasm', 'hello-grpc'])('%s reloaded by reload(name)', (name) => {
  let folder: Awaited<ReturnType<typeof tempPluginsDir>>
  let started: Awaited<ReturnType<typeof startManager>>
  let manager: PluginManager
  let pluginDir: string
  const greeting = greetingOf[name] as (result: unknown) => string

  beforeAll(async () => {
    folder = await tempPluginsDir()
    pluginDir = await copyExample(name, folder.dir)
    started = await startManager({ pluginsDir: folder.dir, policies: [helloWasmPolicy, helloGrpcPolicy] })
    manager = started.manager
    expect(manager.get(name)?.state).toBe('running')
  }, 60_000)

  afterAll(async () => {
    await started?.close()
    await folder?.remove()
  })

  it('swaps in the new version while calls keep coming, without one failed call', async () => {
    await newVersion(pluginDir, '0.2.0', 'Howdy')
    const stream = steadyCalls(manager, name, 'greet', { name: 'Ada' }, greeting)
    const reloaded = await manager.reload(name)
    // Calls on the new version too, before the stream stops.
    const served = manager.get(name)?.metrics.calls ?? 0
    await eventually(
      () => (manager.get(name)?.metrics.calls ?? 0) > served + 20,
      30_000,
      'calls after the swap',
    )
    const seen = await stream.stop()
    expect(seen.failures).toEqual([])
    expect(seen.failed).toBe(0)
    expect(reloaded).toMatchObject({ state: 'running', version: '0.2.0' })
    // The stream was served by the old version, then by the new one.
    expect(seen.distinct).toEqual(['Hello, Ada!', 'Howdy, Ada!'])
    expect(greeting(await manager.call(name, 'greet', { name: 'Bo' }))).toBe('Howdy, Bo!')
    expect(manager.get(name)?.history.at(-1)).toMatchObject({
      from: 'running',
      to: 'running',
      reason: 'reloaded: 0.1.0 → 0.2.0',
    })
    expect(manager.get(name)?.metrics.errors).toEqual({})
  }, 60_000)

  it('keeps the running version serving when the new one is broken, and reports why', async () => {
    // WASM: a module that is not one; gRPC: a program that exits before its handshake.
    const broken = name === 'hello-wasm' ? 'build/plugin.wasm' : 'dist/main.js'
    await writeFile(
      path.join(pluginDir, broken),
      name === 'hello-wasm' ? 'not a wasm module' : 'process.exit(3)\n',
    )
    await newVersion(pluginDir, '0.3.0', 'Broken')
    const stream = steadyCalls(manager, name, 'greet', { name: 'Ada' }, greeting)
    const failure = await manager.reload(name).then(
      () => undefined,
      (error: unknown) => error,
    )
    const seen = await stream.stop()
    expect(failure).toMatchObject({ name: 'PluginError', plugin: name })
    expect(seen.failures).toEqual([])
    expect(seen.failed).toBe(0)
    expect(seen.ok).toBeGreaterThan(0)
    expect(seen.distinct).toEqual(['Howdy, Ada!'])
    const info = manager.get(name)
    expect(info).toMatchObject({ state: 'running', version: '0.2.0' })
    expect(info?.lastError?.code).toBe((failure as { code: string }).code)
    expect(info?.history.at(-1)?.reason).toMatch(/^reload failed, the running version keeps serving: /)
    expect(reloadFailures(started.events, name)).toEqual(['running→running'])
    expect(greeting(await manager.call(name, 'greet', { name: 'Cy' }))).toBe('Howdy, Cy!')
    if (name === 'hello-grpc') {
      // Of the first version, the second and the broken third, only the second runs.
      await eventually(() => processesWithCommandLine(pluginDir).length === 1, 20_000, 'one process')
    }
  }, 60_000)
})

describe('plugins reloaded by a change on disk (watch: true)', () => {
  let folder: Awaited<ReturnType<typeof tempPluginsDir>>
  let started: Awaited<ReturnType<typeof startManager>>
  let manager: PluginManager
  const dirs: Record<string, string> = {}

  beforeAll(async () => {
    folder = await tempPluginsDir()
    for (const name of ['hello-wasm', 'hello-grpc']) dirs[name] = await copyExample(name, folder.dir)
    started = await startManager({
      pluginsDir: folder.dir,
      policies: [helloWasmPolicy, helloGrpcPolicy],
      watch: { debounceMs: 300 },
    })
    manager = started.manager
  }, 60_000)

  afterAll(async () => {
    await started?.close()
    await folder?.remove()
  })

  it.each(['hello-wasm', 'hello-grpc'])(
    '%s: a new plugin.yaml is served after the watcher reloads it, with no failed call',
    async (name) => {
      const greeting = greetingOf[name] as (result: unknown) => string
      const stream = steadyCalls(manager, name, 'greet', { name: 'Ada' }, greeting)
      await newVersion(dirs[name] as string, '0.2.0', 'Ahoy')
      await eventually(() => manager.get(name)?.version === '0.2.0', 30_000, 'the reload')
      const served = manager.get(name)?.metrics.calls ?? 0
      await eventually(() => (manager.get(name)?.metrics.calls ?? 0) > served + 20, 30_000, 'calls after it')
      const seen = await stream.stop()
      expect(seen.failures).toEqual([])
      expect(seen.failed).toBe(0)
      expect(seen.distinct).toEqual(['Hello, Ada!', 'Ahoy, Ada!'])
      expect(manager.get(name)?.history.at(-1)?.reason).toBe('reloaded after a change on disk: 0.1.0 → 0.2.0')
    },
    60_000,
  )

  it('a broken plugin.yaml on disk leaves the running version serving, and is reported', async () => {
    const before = reloadFailures(started.events, 'hello-grpc').length
    await writeFile(path.join(dirs['hello-grpc'] as string, 'plugin.yaml'), 'name: hello-grpc\nruntime: [\n')
    await eventually(
      () => reloadFailures(started.events, 'hello-grpc').length > before,
      30_000,
      'the failure',
    )
    const info = manager.get('hello-grpc')
    expect(info).toMatchObject({ state: 'running', version: '0.2.0' })
    expect(info?.lastError?.code).toBe('manifest_invalid')
    expect(info?.history.at(-1)?.reason).toMatch(/reload failed, the running version keeps serving/)
    expect(await manager.call('hello-grpc', 'greet', { name: 'Bo' })).toMatchObject({ text: 'Ahoy, Bo!' })
  }, 60_000)
})

describe('a reload to a version that requests less', () => {
  let folder: Awaited<ReturnType<typeof tempPluginsDir>>
  let started: Awaited<ReturnType<typeof startManager>>

  beforeAll(async () => {
    folder = await tempPluginsDir()
  })

  afterAll(async () => {
    await started?.close()
    await folder?.remove()
  })

  it("checks the running version's host calls against its own request until the swap", async () => {
    const pluginDir = await copyExample('hello-grpc', folder.dir)
    started = await startManager({ pluginsDir: folder.dir, policies: [helloGrpcPolicy] })
    const { manager } = started
    // 0.2.0 counts greetings under the cache key `visits` and asks for that key alone; 0.1.0, still
    // serving while 0.2.0 starts, reads `greetings`, which only its own request covers.
    await newVersion(pluginDir, '0.2.0', 'Howdy')
    const program = path.join(pluginDir, 'dist/main.js')
    const js = await readFile(program, 'utf8')
    expect(js).toContain('"greetings"')
    await writeFile(program, js.replaceAll('"greetings"', '"visits"'))
    await editManifest(pluginDir, (yaml) =>
      yaml.replace(/- type: cache\n( +)scope: \["\*"\]/, '- type: cache\n$1scope: ["visits"]'),
    )
    const stream = steadyCalls(manager, 'hello-grpc', 'greet', { name: 'Ada' }, greetingOf['hello-grpc'])
    const reloaded = await manager.reload('hello-grpc')
    const served = manager.get('hello-grpc')?.metrics.calls ?? 0
    await eventually(
      () => (manager.get('hello-grpc')?.metrics.calls ?? 0) > served + 20,
      30_000,
      'calls after the swap',
    )
    const seen = await stream.stop()
    expect(reloaded).toMatchObject({ state: 'running', version: '0.2.0' })
    expect(seen.failures).toEqual([])
    expect(seen.distinct).toEqual(['Hello, Ada!', 'Howdy, Ada!'])
    // And the new version is held to its own, smaller request.
    expect(manager.get('hello-grpc')?.grant?.permissions).toContainEqual(
      expect.objectContaining({ type: 'cache', scope: ['visits'] }),
    )
  }, 60_000)
})

/**
 * `limiter`, whose next hit, once held, is answered only when released: what a shared (Redis)
 * limiter does to a call, whose admission takes a round trip, made long enough to reload meanwhile.
 */
function holdingLimiter(limiter: RateLimiter) {
  let held: Promise<void> | undefined
  let release = () => {}
  const holding: RateLimiter = {
    hit(key, limit, windowMs) {
      const gate = held
      held = undefined
      return gate === undefined
        ? limiter.hit(key, limit, windowMs)
        : gate.then(() => limiter.hit(key, limit, windowMs))
    },
    close: () => limiter.close(),
  }
  return {
    limiter: holding,
    holdNext() {
      held = new Promise((resolve) => {
        release = resolve
      })
    },
    release: () => release(),
  }
}

describe('a reload while a call waits for its rate limit', () => {
  let folder: Awaited<ReturnType<typeof tempPluginsDir>>
  let backends: Awaited<ReturnType<typeof createBackends>> | undefined
  let manager: PluginManager | undefined

  beforeAll(async () => {
    folder = await tempPluginsDir()
  })

  afterAll(async () => {
    await manager?.close()
    await backends?.close()
    await folder?.remove()
  })

  it('leaves the old version running until that call has been served by it', async () => {
    const pluginDir = await copyExample('hello-wasm', folder.dir)
    backends = await createBackends({ databaseUrl: '', redisUrl: '' })
    const rate = holdingLimiter(backends.rateLimiter)
    manager = createPluginManager({
      hostVersion: '1.0.0',
      logger: { log() {} },
      pluginsDir: folder.dir,
      policies: [helloWasmPolicy],
      backends: { ...backends, rateLimiter: rate.limiter },
    })
    await manager.start()
    const greeting = greetingOf['hello-wasm'] as (result: unknown) => string
    await newVersion(pluginDir, '0.2.0', 'Howdy')
    rate.holdNext()
    const waiting = manager.call('hello-wasm', 'greet', { name: 'Ada' })
    const reloading = manager.reload('hello-wasm')
    await eventually(() => manager?.get('hello-wasm')?.version === '0.2.0', 30_000, 'the swap')
    rate.release()
    expect(greeting(await waiting)).toBe('Hello, Ada!')
    expect(await reloading).toMatchObject({ state: 'running', version: '0.2.0' })
    expect(greeting(await manager.call('hello-wasm', 'greet', { name: 'Bo' }))).toBe('Howdy, Bo!')
  }, 60_000)
})
