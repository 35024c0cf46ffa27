import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { corralHandshake } from '@corral/proto'
import { isPluginError, type Manifest } from '@corral/types'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startGoPlugin } from './go-plugin-client.js'
import { createGrpcRunner, type GrpcPlugin } from './grpc-runner.js'
import {
  fixtureManifest,
  fixturesDir,
  grantFor,
  memoryLogger,
  processesWithCommandLine,
  recordingHost,
} from './testing/support.js'

// Real plugin processes run as `nobody` by a host running as root, as CI runs: without root there is
// no other user to run them as, and this file fails rather than skip.
if (process.getuid?.() !== 0) {
  throw new Error('plugin-user.int.test.ts starts plugins as another user: it must run as root (as CI does)')
}
const nobody = { uid: 65534, gid: 65534 }
const sdkFixture = join(fixturesDir, 'sdk-plugin.mjs')

/** A line of `/proc/<pid>/status`, such as `Uid` or `Groups`, as its fields. */
function statusFields(pid: number, field: string): string[] {
  const line = new RegExp(`^${field}:(.*)$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]
  return (line ?? '').trim().split(/\s+/).filter(Boolean)
}

function environOf(pid: number): Record<string, string> {
  return Object.fromEntries(
    readFileSync(`/proc/${pid}/environ`, 'utf8')
      .split('\0')
      .filter((entry) => entry.includes('='))
      .map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]),
  )
}

describe('a runner with pluginUser', () => {
  const host = recordingHost()
  const runner = createGrpcRunner({ pluginUser: nobody, logger: memoryLogger().logger })
  const hostGroups = process.getgroups?.() ?? []
  let plugin: GrpcPlugin
  let socketDir: string

  beforeAll(async () => {
    // Supplementary groups of the host's, which a plugin process must not keep.
    process.setgroups?.([0, 4])
    const manifest = fixtureManifest('as-nobody', 'sdk-plugin.mjs', ['well', 'as-nobody'])
    plugin = await runner.load({
      manifest,
      dir: fixturesDir,
      grant: grantFor(manifest),
      hostApi: host.handler,
    })
    await plugin.register()
    await plugin.init({})
    socketDir = environOf(plugin.pid as number).PLUGIN_UNIX_SOCKET_DIR as string
  })
  afterAll(async () => {
    await runner.close()
    process.setgroups?.(hostGroups)
  })

  it('runs the plugin as that user and group, with none of the host’s groups', () => {
    const pid = plugin.pid as number
    expect(statusFields(pid, 'Uid')).toEqual(['65534', '65534', '65534', '65534'])
    expect(statusFields(pid, 'Gid')).toEqual(['65534', '65534', '65534', '65534'])
    expect(statusFields(process.pid, 'Groups')).toEqual(['0', '4'])
    expect(statusFields(pid, 'Groups')).toEqual([])
  })

  it('handshakes, takes calls, and makes host calls over the broker', async () => {
    expect(await plugin.call('echo', { a: 1 })).toEqual({ a: 1 })
    const value = Buffer.from('kept').toString('base64')
    expect(await plugin.call('hostCall', { method: 'cache.set', args: { key: 'k', value } })).toEqual({})
    expect(host.calls.map((c) => [c.method, c.context.plugin])).toEqual([['cache.set', 'as-nobody']])
    expect(host.cache.get('k')).toBe(value)
  })

  it('gives it a socket folder of its own, mode 0700', () => {
    const stat = statSync(socketDir)
    expect([stat.uid, stat.gid, stat.mode & 0o777]).toEqual([65534, 65534, 0o700])
    expect(environOf(plugin.pid as number).TMPDIR).toBe(socketDir)
  })

  it('keeps it out of the host process: its environment and descriptors', async () => {
    // The probe works: the plugin opens its own files.
    expect(await plugin.call('open', { path: sdkFixture })).toBe('opened')
    expect(await plugin.call('open', { path: `/proc/${process.pid}/environ` })).toBe('EACCES')
    expect(await plugin.call('open', { path: `/proc/${process.pid}/fd` })).toBe('EACCES')
  })

  it('removes the socket folder at shutdown', async () => {
    await plugin.shutdown()
    expect(existsSync(socketDir)).toBe(false)
  })
})

describe('startGoPlugin with a user', () => {
  it('hands each broker socket to that user, in a folder of the host’s it can enter but not list', async () => {
    const client = await startGoPlugin({
      command: process.execPath,
      args: [sdkFixture, 'well', 'broker-owner'],
      handshake: corralHandshake,
      autoMtls: true,
      user: nobody,
      logger: memoryLogger().logger,
    })
    let brokerDir: string | undefined
    try {
      const offered = await client.broker.serve(client.broker.nextId(), () => {})
      brokerDir = dirname(offered.address)
      const socket = statSync(offered.address)
      expect([socket.isSocket(), socket.uid, socket.gid]).toEqual([true, 65534, 65534])
      const folder = statSync(brokerDir)
      expect([folder.uid, folder.mode & 0o777]).toEqual([0, 0o711])
    } finally {
      await client.stop()
    }
    expect(existsSync(brokerDir as string)).toBe(false)
  })
})

describe('a plugin whose entry that user cannot reach', () => {
  const runner = createGrpcRunner({ pluginUser: nobody, logger: memoryLogger().logger })
  const root = mkdtempSync(join(tmpdir(), 'corral-unreachable-'))
  chmodSync(root, 0o755)
  afterAll(async () => {
    await runner.close()
    rmSync(root, { recursive: true, force: true })
  })
  const fixture = pathToFileURL(sdkFixture).href

  it.each([
    { case: 'a node entry it cannot read', folderMode: 0o755, entryMode: 0o600, binary: false },
    { case: 'a binary entry it cannot run', folderMode: 0o755, entryMode: 0o744, binary: true },
    { case: 'an entry in a folder it cannot enter', folderMode: 0o700, entryMode: 0o644, binary: false },
  ])(
    'fails at once on $case, naming the path and the user',
    async ({ case: name, folderMode, entryMode, binary }) => {
      const dir = join(root, name.replaceAll(' ', '-'))
      const file = binary ? 'plugin' : 'main.mjs'
      const entry = join(dir, file)
      mkdirSync(dir, { mode: folderMode })
      chmodSync(dir, folderMode)
      writeFileSync(entry, binary ? '#!/bin/sh\nexec true\n' : `import ${JSON.stringify(fixture)}\n`, {
        mode: entryMode,
      })
      chmodSync(entry, entryMode)
      const manifest: Manifest = {
        ...fixtureManifest('unreachable', file, ['well', 'unreachable']),
        ...(binary ? { entry: { binary: file, args: [], env: [] } } : {}),
      }
      const error = await runner
        .load({ manifest, dir, grant: grantFor(manifest), hostApi: recordingHost().handler })
        .catch((e: unknown) => e)
      const why = folderMode === 0o700 ? `: it cannot enter ${dir}` : ''
      expect(isPluginError(error) && [error.code, error.rawMessage]).toEqual([
        'load_failed',
        `uid 65534 (gid 65534), the user plugins run as, cannot ${binary ? 'run' : 'read'} ${entry}${why}`,
      ])
      expect(processesWithCommandLine(entry)).toEqual([])
    },
  )
})
