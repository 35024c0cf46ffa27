import { statSync } from 'node:fs'
import { chmod, cp, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fixturesDir } from '@corral/grpc-runner/testing'
import { createPluginManager } from '@corral/manager'
import { parsePolicy } from '@corral/manifest'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type RunningHost, startHost } from './host.js'
import { appDir } from './testing/test-host.js'

// A real host on SQLite, running as root as CI does, with its gRPC plugins run as `nobody`: what
// the security review found a plugin of the host's user doing (opening the host's database to
// rewrite its own policy, reading the host's environment) fails, while its grant still works.
if (process.getuid?.() !== 0) {
  throw new Error('plugin-user.int.test.ts runs plugins as another user: it must run as root (as CI does)')
}

const permissions = [
  { type: 'db', access: ['read', 'write'], scope: ['prober_*'] },
  { type: 'cache', access: ['read', 'write'], scope: ['*'] },
]
const manifest = `name: prober
version: 0.1.0
runtime: grpc
entry:
  node: sdk-plugin.mjs
  args: [well, prober]
resources:
  call_timeout: 5s
  permissions:
${permissions.map((p) => `    - ${JSON.stringify(p)}`).join('\n')}
`

let root: string
let dataDir: string
let host: RunningHost

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'corral-plugin-user-'))
  // Others may enter, as under /var/lib: the data folder's own mode is what keeps them out.
  await chmod(root, 0o755)
  dataDir = path.join(root, 'data')
  const plugin = path.join(root, 'plugins/prober')
  await mkdir(path.join(plugin, 'node_modules/@corral'), { recursive: true })
  await symlink(
    path.resolve(appDir, '../../packages/plugin-sdk'),
    path.join(plugin, 'node_modules/@corral/plugin-sdk'),
  )
  await cp(path.join(fixturesDir, 'sdk-plugin.mjs'), path.join(plugin, 'sdk-plugin.mjs'))
  await writeFile(path.join(plugin, 'plugin.yaml'), manifest)
  host = await startHost({
    dataDir,
    pluginsDir: path.join(root, 'plugins'),
    policies: [parsePolicy({ plugin: 'prober', status: 'approved', grants: permissions })],
    hostVersion: '0.1.0',
    port: 0,
    templatesDir: path.join(appDir, 'templates'),
    createManager: (options) => createPluginManager({ ...options, watch: false }),
    logLevel: 'error',
    server: { logger: false },
    pluginUser: { uid: 65534, gid: 65534 },
  })
})

afterAll(async () => {
  await host?.close()
  if (root !== undefined) await rm(root, { recursive: true, force: true })
})

describe('a host whose plugins run as nobody', () => {
  const hostCall = (method: string, args: unknown) =>
    host.manager.call('prober', 'hostCall', { method, args })

  it('serves the plugin its grant: its own tables and the cache, through the broker', async () => {
    expect(host.manager.get('prober')?.state).toBe('running')
    await hostCall('db.exec', { sql: 'CREATE TABLE prober_notes (note TEXT)' })
    await hostCall('db.exec', { sql: "INSERT INTO prober_notes VALUES ('kept')" })
    expect(await hostCall('db.query', { sql: 'SELECT note FROM prober_notes' })).toEqual({
      rows: [{ note: 'kept' }],
    })
    await hostCall('cache.set', { key: 'k', value: Buffer.from('v').toString('base64') })
    expect(await hostCall('cache.get', { key: 'k' })).toEqual({ value: Buffer.from('v').toString('base64') })
  })

  it('keeps the host’s data folder, database files and the plugins’ databases owner-only', () => {
    const mode = (file: string) => statSync(path.join(dataDir, file)).mode & 0o777
    expect(mode('.')).toBe(0o700)
    expect(mode('host.sqlite')).toBe(0o600)
    expect(mode('host.sqlite-wal')).toBe(0o600)
    expect(mode('host.sqlite-shm')).toBe(0o600)
    expect(mode('host.sqlite-plugins')).toBe(0o700)
  })

  it('leaves the plugin unable to open them, or the host’s environment and descriptors', async () => {
    const open = (file: string) => host.manager.call('prober', 'open', { path: file })
    // The probe works: the plugin opens its own files.
    expect(await open(path.join(root, 'plugins/prober/plugin.yaml'))).toBe('opened')
    for (const file of [
      dataDir,
      path.join(dataDir, 'host.sqlite'),
      path.join(dataDir, 'host.sqlite-wal'),
      path.join(dataDir, 'host.sqlite-shm'),
      path.join(dataDir, 'host.sqlite-plugins/prober.sqlite'),
      `/proc/${process.pid}/environ`,
      `/proc/${process.pid}/fd`,
    ]) {
      expect([file, await open(file)]).toEqual([file, 'EACCES'])
    }
  })
})
