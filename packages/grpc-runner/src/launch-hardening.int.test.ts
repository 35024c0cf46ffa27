import { spawn } from 'node:child_process'
import { once } from 'node:events'
import {
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { pathToFileURL } from 'node:url'
import { isPluginError } from '@corral/types'
import { afterAll, describe, expect, it } from 'vitest'
import { createGrpcRunner } from './grpc-runner.js'
import {
  eventually,
  fixtureManifest,
  fixturesDir,
  grantFor,
  memoryLogger,
  nextState,
  processExists,
  processesWithCommandLine,
  recordingHost,
} from './testing/support.js'

/** A process's open pipes and sockets above fd 2, as `socket:[inode]` / `pipe:[inode]`. */
function channelsAbove2(pid: number): Set<string> {
  const found = new Set<string>()
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    if (Number(fd) <= 2) continue
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`)
      if (/^(socket|pipe):/.test(target)) found.add(target)
    } catch {
      // Closed while reading.
    }
  }
  return found
}

describe('a plugin process gets no descriptor of the host', () => {
  it('neither one the host inherited without close-on-exec nor a listening socket of its own', async () => {
    // fd 40 of the host is a socket from this test, inherited as a service manager would pass one.
    const inherited = 40
    const host = spawn(process.execPath, [join(fixturesDir, 'host-with-descriptors.mjs')], {
      stdio: ['pipe', 'pipe', 'inherit', ...Array<'ignore'>(inherited - 3).fill('ignore'), 'pipe'],
    })
    try {
      const [line] = (await once(
        createInterface({ input: host.stdout as NodeJS.ReadableStream }),
        'line',
      )) as [string]
      const { plugin } = JSON.parse(line) as { plugin: number }
      const hostPid = host.pid as number
      // The premise: the host really holds it, open across exec.
      const flags = /flags:\s*(\d+)/.exec(readFileSync(`/proc/${hostPid}/fdinfo/${inherited}`, 'utf8'))?.[1]
      expect(Number.parseInt(flags ?? '0', 8) & 0o2000000).toBe(0)
      const hostChannels = channelsAbove2(hostPid)
      expect(hostChannels.has(readlinkSync(`/proc/${hostPid}/fd/${inherited}`))).toBe(true)
      const shared = [...channelsAbove2(plugin)].filter((channel) => hostChannels.has(channel))
      expect(shared).toEqual([])
    } finally {
      host.stdin?.end()
      await once(host, 'exit')
    }
  })
})

describe('an entry that a symlink leads out of the plugin folder', () => {
  const logs = memoryLogger()
  const runner = createGrpcRunner({
    logger: logs.logger,
    restart: { initialBackoffMs: 50, maxBackoffMs: 100, maxRestarts: 1 },
  })
  const dir = mkdtempSync(join(tmpdir(), 'corral-entry-'))
  const outside = mkdtempSync(join(tmpdir(), 'corral-outside-'))
  afterAll(async () => {
    await runner.close()
    rmSync(dir, { recursive: true, force: true })
    rmSync(outside, { recursive: true, force: true })
  })
  // A plugin of its own folder: main.mjs runs the SDK fixture.
  const fixture = pathToFileURL(join(fixturesDir, 'sdk-plugin.mjs')).href
  writeFileSync(join(dir, 'main.mjs'), `import ${JSON.stringify(fixture)}\n`)
  // What a plugin would rather run: a script outside its folder.
  writeFileSync(join(outside, 'escape.mjs'), `import ${JSON.stringify(fixture)}\n`)
  const manifest = fixtureManifest('linked', 'main.mjs', ['well', 'linked'])

  it('is refused at load, naming the path', async () => {
    const linkDir = mkdtempSync(join(tmpdir(), 'corral-entry-'))
    try {
      symlinkSync(join(outside, 'escape.mjs'), join(linkDir, 'main.mjs'))
      const error = await runner
        .load({ manifest, dir: linkDir, grant: grantFor(manifest), hostApi: recordingHost().handler })
        .catch((e: unknown) => e)
      expect(isPluginError(error) && [error.code, error.rawMessage]).toEqual([
        'load_failed',
        expect.stringMatching(/entry main\.mjs leads outside the plugin folder/),
      ])
    } finally {
      rmSync(linkDir, { recursive: true, force: true })
    }
  })

  it('is refused at a restart when swapped in after load, and the outside script never runs', async () => {
    const plugin = await runner.load({
      manifest,
      dir,
      grant: grantFor(manifest),
      hostApi: recordingHost().handler,
    })
    await plugin.register()
    await plugin.init({})
    const pid = plugin.pid as number
    // The plugin (its own user's files) swaps its entry for a symlink, then crashes to be restarted.
    rmSync(join(dir, 'main.mjs'))
    symlinkSync(join(outside, 'escape.mjs'), join(dir, 'main.mjs'))
    const quarantined = nextState(plugin, 'quarantined')
    await plugin.call('crash')
    await eventually(() => !processExists(pid), 5000, 'the crash')
    await quarantined
    const health = await plugin.health()
    expect(health.last_error).toMatchObject({
      code: 'load_failed',
      message: expect.stringContaining('entry main.mjs leads outside the plugin folder'),
    })
    expect(processesWithCommandLine('escape.mjs')).toEqual([])
  })
})
