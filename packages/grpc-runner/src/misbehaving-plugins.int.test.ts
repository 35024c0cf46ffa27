import { join } from 'node:path'
import { corralHandshake } from '@corral/proto'
import { isPluginError, type Plugin, type PluginError } from '@corral/types'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startGoPlugin } from './go-plugin-client.js'
import { createGrpcRunner, type GrpcPlugin } from './grpc-runner.js'
import {
  bareFixturePolicy,
  eventually,
  examplesDir,
  fixtureManifest,
  fixturesDir,
  grantFor,
  memoryLogger,
  nextState,
  processExists,
  processesWithCommandLine,
  processGroupMembers,
  recordingHost,
} from './testing/support.js'

const host = recordingHost()
const logs = memoryLogger()
const runner = createGrpcRunner({
  logger: logs.logger,
  restart: { initialBackoffMs: 50, maxBackoffMs: 200, maxRestarts: 2, restartWindowMs: 60_000 },
})

async function loadFixture(name: string, mode: string, script = 'sdk-plugin.mjs', limits = {}) {
  const manifest = fixtureManifest(name, script, [mode, name])
  const grant = grantFor(manifest, {
    init_timeout: 5000,
    shutdown_timeout: 1000,
    call_timeout: 30_000,
    ...limits,
  })
  return await runner.load({ manifest, dir: fixturesDir, grant, hostApi: host.handler })
}

/** A fixture loaded, registered and initialised: ready to misbehave. */
async function startFixture(...args: Parameters<typeof loadFixture>): Promise<GrpcPlugin> {
  const plugin = await loadFixture(...args)
  await plugin.register()
  await plugin.init({})
  return plugin
}

async function failure(work: Promise<unknown>): Promise<PluginError> {
  const error = await work.then(
    () => undefined,
    (e: unknown) => e,
  )
  if (!isPluginError(error)) throw new Error(`expected a PluginError, got ${String(error)}`)
  return error
}

/**
 * Waits until a restarted plugin has been initialised again: `running` comes before the re-init,
 * and a crash during it is a failed restart, not the crash a test means.
 */
async function untilInitialised(plugin: GrpcPlugin): Promise<void> {
  while (!(await plugin.health()).ready) await new Promise((resolve) => setTimeout(resolve, 50))
}

/** The plugin's whole process group is gone: no process, no orphan. */
async function expectNoProcessLeft(pid: number): Promise<void> {
  await eventually(
    () => !processExists(pid) && processGroupMembers(pid).length === 0,
    10_000,
    `process group ${pid} to be gone`,
  )
}

/** No process runs `script` any more: for plugins that failed before the runner learnt their pid. */
async function expectNoProcessRunning(script: string): Promise<void> {
  await eventually(() => processesWithCommandLine(script).length === 0, 5000, `${script} to be killed`)
}

describe('misbehaving plugins harm only themselves', () => {
  let bystander: Plugin

  beforeAll(async () => {
    bystander = await startFixture('bystander', 'well')
  })
  afterAll(() => runner.close())

  // After every misbehaviour the other plugin still answers.
  const bystanderServes = async () => expect(await bystander.call('echo', { ok: 1 })).toEqual({ ok: 1 })

  it('forwards what a plugin prints over plugin.GRPCStdio, by stream (stderr at warn)', async () => {
    await bystander.call('say', { out: 'to stdout', err: 'to stderr' })
    await eventually(
      () => logs.entries.filter((e) => e.fields?.plugin === 'bystander').length >= 2,
      5000,
      'the lines',
    )
    const lines = logs.entries.filter((e) => e.fields?.plugin === 'bystander')
    expect(lines).toContainEqual({
      level: 'info',
      message: 'to stdout',
      fields: { plugin: 'bystander', stream: 'stdout' },
    })
    expect(lines).toContainEqual({
      level: 'warn',
      message: 'to stderr',
      fields: { plugin: 'bystander', stream: 'stderr' },
    })
  })

  it('logs a stderr line’s own fields capped, never letting them replace the host’s attribution', async () => {
    const line = {
      '@level': 'error',
      '@message': 'forged attribution',
      plugin: 'admin',
      token: 'forged',
      level: 'trace',
      message: 'other',
      // Over the fields cap, within the 16 KiB a stderr line may take.
      huge: 'x'.repeat(8000),
      disk: '/var',
    }
    await bystander.call('stderr', { line: JSON.stringify(line) })
    await eventually(
      () => logs.entries.some((e) => e.message === 'forged attribution'),
      5000,
      'the stderr line',
    )
    expect(logs.entries.filter((e) => e.message === 'forged attribution')).toEqual([
      {
        level: 'error',
        message: 'forged attribution',
        fields: { disk: '/var', plugin: 'bystander', dropped_fields: 5 },
      },
    ])
  })

  it('sees none of the host’s environment but the variables its manifest asks for and its policy grants', async () => {
    process.env.CORRAL_TEST_SECRET = 'host-secret'
    process.env.CORRAL_TEST_PASSED = 'passed-through'
    try {
      const manifest = fixtureManifest('env-reader', 'sdk-plugin.mjs', ['well', 'env-reader'])
      // Asking is not enough: CORRAL_TEST_SECRET is asked for, not granted.
      manifest.entry = {
        node: 'sdk-plugin.mjs',
        args: ['well', 'env-reader'],
        env: ['CORRAL_TEST_PASSED', 'CORRAL_TEST_SECRET'],
      }
      const plugin = await runner.load({
        manifest,
        dir: fixturesDir,
        grant: grantFor(manifest, {}, { env: ['CORRAL_TEST_PASSED', 'HOME'] }),
        hostApi: host.handler,
      })
      await plugin.register()
      await plugin.init({})
      const env = (await plugin.call('env')) as Record<string, string>
      expect(env.CORRAL_TEST_PASSED).toBe('passed-through')
      expect(Object.values(env)).not.toContain('host-secret')
      expect(env.PATH).toBeUndefined()
      expect(Object.keys(env).sort()).toEqual(
        [
          'CORRAL_PLUGIN',
          'CORRAL_TEST_PASSED',
          'PLUGIN_CLIENT_CERT',
          'PLUGIN_PROTOCOL_VERSIONS',
          'PLUGIN_UNIX_SOCKET_DIR',
          'TMPDIR',
        ].sort(),
      )
      await plugin.shutdown()
    } finally {
      delete process.env.CORRAL_TEST_SECRET
      delete process.env.CORRAL_TEST_PASSED
    }
  })

  it('lies about the call behind a host call: an unknown token and no token are refused', async () => {
    const manifest = fixtureManifest('forger', 'token-forger.mjs')
    const plugin = await runner.load({
      manifest,
      dir: fixturesDir,
      // Written on bare grpc-js, it speaks neither AutoMTLS nor peer secrets.
      grant: grantFor(manifest, {}, bareFixturePolicy),
      hostApi: host.handler,
    })
    await plugin.register()
    await plugin.init({})
    const before = host.calls.length
    expect(await plugin.call('forge')).toEqual({
      error: {
        code: 'invalid_argument',
        message: expect.stringContaining('no call of this plugin has token'),
        plugin: 'forger',
      },
    })
    // A host call without a token would carry no call chain: plugin.call depth and cycle rules
    // would not hold for it.
    expect(await plugin.call('background')).toEqual({
      error: {
        code: 'permission_denied',
        message: expect.stringContaining("must carry its call's token"),
        plugin: 'forger',
      },
    })
    expect(await plugin.call('honest', null, { token: 'real-1', chain: ['caller'] })).toEqual({ error: null })
    expect(host.calls.slice(before).map((c) => [c.context.token, c.context.chain])).toEqual([
      ['real-1', ['caller']],
    ])
    await plugin.shutdown()
    await bystanderServes()
  })

  it('wrong magic cookie: load_failed with the plugin’s own message', async () => {
    const error = await failure(
      startGoPlugin({
        command: process.execPath,
        args: [join(examplesDir, 'hello-grpc/dist/main.js')],
        handshake: { ...corralHandshake, magicCookieValue: 'not-the-cookie' },
        logger: logs.logger,
      }),
    )
    expect(error.code).toBe('load_failed')
    expect(error.message).toMatch(/exited with code 1 before the handshake.*This binary is a plugin/s)
    await bystanderServes()
  })

  it('garbage handshake: load_failed showing the offending line, process killed', async () => {
    const error = await failure(loadFixture('garbage', 'x', 'garbage-handshake.mjs'))
    expect(error.code).toBe('load_failed')
    expect(error.message).toContain('protocol "carrier-pigeon" is not grpc')
    expect(error.message).toContain('1|1|unix|/tmp/x.sock|carrier-pigeon|')
    await expectNoProcessRunning('garbage-handshake.mjs')
    await bystanderServes()
  })

  it('answers Register with malformed JSON: load_failed naming the plugin, process stopped', async () => {
    const manifest = fixtureManifest('garbled', 'unary-plugin.mjs', ['garbled', 'malformed-registration'])
    const plugin = await runner.load({
      manifest,
      dir: fixturesDir,
      grant: grantFor(manifest, {}, bareFixturePolicy),
      hostApi: host.handler,
    })
    const pid = plugin.pid as number
    const error = await failure(plugin.register())
    expect(error.code).toBe('load_failed')
    expect(error.plugin).toBe('garbled')
    expect(error.message).toContain('register() returned a registration that is not JSON')
    await plugin.shutdown()
    await expectNoProcessLeft(pid)
    await bystanderServes()
  })

  it('no handshake: deadline_exceeded after init_timeout, process killed', async () => {
    const error = await failure(loadFixture('silent', 'x', 'no-handshake.mjs', { init_timeout: 500 }))
    expect(error.code).toBe('deadline_exceeded')
    await expectNoProcessRunning('no-handshake.mjs')
    await bystanderServes()
  })

  it('crash mid-call: in-flight calls fail at once with unavailable, then restart, then quarantine', async () => {
    const plugin = await startFixture('crasher', 'well')
    const firstPid = plugin.pid as number
    // A call that would run for a minute (and may wait 30 s) fails as soon as the process dies.
    const inFlight = failure(plugin.call('slow', { ms: 60_000 }))
    let restarted = nextState(plugin, 'running')
    await plugin.call('crash', { afterMs: 50 })
    const error = await inFlight
    expect(error.code).toBe('unavailable')
    await expectNoProcessLeft(firstPid)

    // Restarted with backoff, initialised again, serving.
    await restarted
    expect(plugin.pid).not.toBe(firstPid)
    expect(await plugin.call('echo', 'again')).toBe('again')
    await untilInitialised(plugin)

    // Two restarts in the window are allowed; the third crash quarantines it.
    const secondPid = plugin.pid as number
    restarted = nextState(plugin, 'running')
    await plugin.call('crash')
    await restarted
    expect(plugin.pid).not.toBe(secondPid)
    await untilInitialised(plugin)
    const lastPid = plugin.pid as number
    const quarantined = nextState(plugin, 'quarantined')
    await plugin.call('crash')
    await quarantined
    await expectNoProcessLeft(lastPid)
    expect((await failure(plugin.call('echo', 1))).code).toBe('unavailable')
    expect(await plugin.health()).toMatchObject({ ready: false, message: 'plugin is quarantined' })
    expect(logs.entries.some((e) => e.level === 'error' && e.message.includes('quarantined'))).toBe(true)

    await plugin.reset()
    expect(await plugin.call('echo', 'back')).toBe('back')
    await plugin.shutdown()
    await bystanderServes()
  })

  it('crash after the handshake: the restart says why, in its last stderr lines, logged at warn', async () => {
    const plugin = await startFixture('teller', 'well')
    const restarting = nextState(plugin, 'restarting')
    await plugin.call('stderr', { line: 'fatal: the disk is full' })
    await plugin.call('crash', { afterMs: 50 })
    const change = await restarting
    expect(change.reason).toMatch(/exited with code 7; stderr: fatal: the disk is full$/)
    expect(logs.entries).toContainEqual({
      level: 'warn',
      message: 'fatal: the disk is full',
      fields: { plugin: 'teller' },
    })
    await plugin.shutdown()
    await bystanderServes()
  })

  it('exit during init: init fails with unavailable, nothing left behind', async () => {
    const plugin = await loadFixture('init-exit', 'exit-in-init')
    const pid = plugin.pid as number
    await plugin.register()
    const error = await failure(plugin.init({}))
    expect(error.code).toBe('unavailable')
    await plugin.shutdown()
    await expectNoProcessLeft(pid)
    await bystanderServes()
  })

  it('ignores Shutdown: stopped by SIGKILL after the grace period', async () => {
    const plugin = await startFixture('stubborn', 'ignore-stop')
    const pid = plugin.pid as number
    await plugin.shutdown()
    await expectNoProcessLeft(pid)
    await bystanderServes()
  })

  it('floods stderr: lines are capped and counted, the host keeps serving it and others', async () => {
    const plugin = await startFixture('flooder', 'flood')
    await eventually(
      () => logs.entries.some((e) => e.message.includes('dropped') && e.fields?.plugin === 'flooder'),
      10_000,
      'a dropped-lines report',
    )
    const floodLines = logs.entries.filter(
      (e) => e.fields?.plugin === 'flooder' && e.message.startsWith('flood'),
    )
    expect(floodLines.every((e) => e.message.length <= 16 * 1024 + 1)).toBe(true)
    expect(floodLines.some((e) => e.message.endsWith('…'))).toBe(true)
    expect(await plugin.call('echo', 'still here')).toBe('still here')
    const pid = plugin.pid as number
    await plugin.shutdown()
    await expectNoProcessLeft(pid)
    await bystanderServes()
  })

  it('spawns a child and exits: the child goes with it', async () => {
    const plugin = await startFixture('spawner', 'spawn-child')
    const pid = plugin.pid as number
    expect(processGroupMembers(pid).length).toBeGreaterThan(1)
    await plugin.call('crash')
    await expectNoProcessLeft(pid)
    await plugin.shutdown()
    await bystanderServes()
  })

  it('memory above memory_mb: restarted with the reason logged', async () => {
    const manifest = fixtureManifest('hog', 'sdk-plugin.mjs', ['well', 'hog'])
    const grant = grantFor(manifest, { memory_mb: 120, init_timeout: 5000 })
    const watched = createGrpcRunner({
      logger: logs.logger,
      supervision: { memoryIntervalMs: 100 },
      restart: { initialBackoffMs: 50 },
    })
    try {
      const hog = await watched.load({
        manifest,
        dir: fixturesDir,
        grant,
        hostApi: host.handler,
      })
      await hog.register()
      await hog.init({})
      const pid = hog.pid as number
      const restarted = nextState(hog, 'running')
      // The limit may strike while `grow` still runs: then the call fails with unavailable.
      const grown = await hog.call('grow').catch((e: unknown) => e)
      expect(grown === 40 || (isPluginError(grown) && grown.code === 'unavailable')).toBe(true)
      await expectNoProcessLeft(pid)
      expect(logs.entries.some((e) => e.message.includes('above its memory_mb of 120'))).toBe(true)
      await restarted
      expect(hog.pid).not.toBe(pid)
      expect(await hog.call('echo', 1)).toBe(1)
    } finally {
      await watched.close()
    }
    await bystanderServes()
  })

  it('stops answering health checks: restarted', async () => {
    const manifest = fixtureManifest('frozen', 'sdk-plugin.mjs', ['well', 'frozen'])
    const grant = grantFor(manifest, { init_timeout: 5000 })
    const watched = createGrpcRunner({
      logger: logs.logger,
      supervision: { healthIntervalMs: 100, healthTimeoutMs: 100, healthFailures: 2 },
      restart: { initialBackoffMs: 50 },
    })
    try {
      const frozen = await watched.load({
        manifest,
        dir: fixturesDir,
        grant,
        hostApi: host.handler,
      })
      await frozen.register()
      await frozen.init({})
      const pid = frozen.pid as number
      const restarted = nextState(frozen, 'running')
      // SIGSTOP: the process is there but answers nothing.
      process.kill(pid, 'SIGSTOP')
      await expectNoProcessLeft(pid)
      expect(logs.entries.some((e) => e.message.includes('health checks in a row'))).toBe(true)
      await restarted
      expect(frozen.pid).not.toBe(pid)
      expect(await frozen.call('echo', 2)).toBe(2)
    } finally {
      await watched.close()
    }
    await bystanderServes()
  })
})
