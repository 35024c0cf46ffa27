import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { createPluginManager } from '@corral/manager'
import { parsePolicy } from '@corral/manifest'
import type { ResourcePolicy } from '@corral/types'
import { corralWat, wat2wasm } from '@corral/wasm-runner/testing'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { parse } from 'yaml'
import { type RunningHost, startHost } from './host.js'
import { pluginSummaryLines } from './startup-summary.js'
import { adminPassword, appDir, examplesDir, signInAt } from './testing/test-host.js'

// A real host over a plugins folder as an operator leaves it: a checkout's .git, node_modules, a
// hidden folder and a notes folder (none of them plugins); a folder whose plugin.yaml does not
// parse (with an administrator's stored decision); a broken folder `hello-x` beside `hx-new`, which
// declares `name: hello-x`; hello-wasm (approved); hello-grpc, pending review, whose init writes
// its own table; and `crasher`, a gRPC plugin that crashes after its handshake, saying why on stderr.
const sdk = pathToFileURL(path.resolve(appDir, '../../packages/plugin-sdk/dist/index.js')).href
const crasherMain = `
import { writeSync } from 'node:fs'
import { definePlugin, serve } from '${sdk}'
await serve(definePlugin({
  register: { routes: [{ method: 'GET', path: '/crash', handler: 'crash', middleware: [] }] },
  functions: {
    crash: () => {
      writeSync(2, 'Error: the disk is full\\n')
      setTimeout(() => process.exit(3), 20)
      return 'bye'
    },
  },
}))
`
const crasherManifest = `
name: crasher
version: 0.1.0
runtime: grpc
entry:
  node: main.mjs
resources:
  init_timeout: 10s
`
const helloXManifest = `
name: hello-x
version: 0.2.0
runtime: wasm
entry:
  wasm: plugin.wasm
provides:
  routes:
    - { method: GET, path: /echo, handler: echo }
`
const badYamlPolicy: ResourcePolicy = parsePolicy({
  plugin: 'bad-yaml',
  status: 'approved',
  grants: [{ type: 'cache', access: ['read'], scope: ['bad:*'] }],
  limits: { memory_mb: 64 },
})

let root: string
let host: RunningHost
let admin: { cookie: string; csrf: string }

async function folder(name: string, files: Record<string, string | Uint8Array>): Promise<void> {
  const dir = path.join(root, 'plugins', name)
  await mkdir(dir, { recursive: true })
  for (const [file, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, file)), { recursive: true })
    await writeFile(path.join(dir, file), content)
  }
}

const api = (method: 'GET' | 'POST', url: string, body?: unknown) =>
  fetch(`${host.url}/api/v1${url}`, {
    method,
    headers: {
      cookie: admin.cookie,
      'x-csrf-token': admin.csrf,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'corral-plugin-states-'))
  const plugins = path.join(root, 'plugins')
  await folder('.git', { HEAD: 'ref: refs/heads/main\n' })
  await folder('node_modules', { 'left-pad/index.js': 'export default 1\n' })
  await folder('.hidden', { 'plugin.yaml': helloXManifest.replace('hello-x', 'hidden') })
  await folder('notes', { 'todo.txt': 'write a plugin\n' })
  await folder('bad-yaml', { 'plugin.yaml': 'name: bad-yaml\nversion: [\n' })
  await folder('hello-x', { 'plugin.yaml': 'name: hello-x\nversion: nope\n' })
  await folder('hx-new', { 'plugin.yaml': helloXManifest, 'plugin.wasm': await wat2wasm(corralWat('')) })
  await folder('crasher', { 'plugin.yaml': crasherManifest, 'main.mjs': crasherMain })
  for (const name of ['hello-wasm', 'hello-grpc'])
    await symlink(path.join(examplesDir, name), path.join(plugins, name))
  const seeds = (parse(await readFile(path.join(appDir, 'policies.yaml'), 'utf8')) as unknown[])
    .map(parsePolicy)
    .filter((p) => p.plugin === 'hello-wasm')
  const approved = (plugin: string) => parsePolicy({ plugin, status: 'approved', grants: [] })
  host = await startHost({
    dataDir: path.join(root, 'data'),
    pluginsDir: plugins,
    policies: [...seeds, badYamlPolicy, approved('hello-x'), approved('crasher')],
    hostVersion: '0.1.0',
    port: 0,
    adminPassword,
    templatesDir: path.join(appDir, 'templates'),
    createManager: (options) => createPluginManager({ ...options, watch: false, jobs: false }),
    logLevel: 'error',
    server: { logger: false },
  })
  admin = await signInAt(host.url, 'admin', adminPassword)
}, 120_000)

afterAll(async () => {
  await host?.close()
  if (root !== undefined) await rm(root, { recursive: true, force: true })
})

describe('plugins as an operator sees them', () => {
  it('lists no hidden folder, node_modules or folder without plugin.yaml, and both a broken folder and the plugin named like it', async () => {
    const listed = ((await (await api('GET', '/plugins')).json()) as Array<{ name: string; state: string }>)
      .map((p) => `${p.name} ${p.state}`)
      .sort()
    expect(listed).toEqual(
      [
        `${path.join(root, 'plugins/hello-x')} failed`,
        'bad-yaml failed',
        'crasher running',
        'hello-grpc failed',
        'hello-wasm running',
        'hello-x running',
      ].sort(),
    )
  })

  it('prints a failed plugin’s stored policy and the first line of why in the start-up summary', async () => {
    const lines = await pluginSummaryLines(host.manager)
    const at = lines.findIndex((line) => line.includes(' bad-yaml '))
    expect(lines[at]).toBe('    ✗ bad-yaml  [?] failed, policy approved')
    expect(lines[at + 1]).toMatch(/^ {8}manifest_invalid: \S/)
    expect(lines[at + 1]).not.toContain('\n')
    expect(lines).toContain('    ✓ hello-wasm 0.1.0 [wasm] running, policy approved')
  })

  it('shows the stored policy of a plugin that failed at discovery, and a decision keeps its grants and limits', async () => {
    expect(await (await api('GET', '/plugins/bad-yaml')).json()).toMatchObject({
      state: 'failed',
      policy: { status: 'approved' },
    })
    const row = (await adminPage('/admin/plugins')).split('data-plugin="bad-yaml"')[1]?.split('</tr>')[0]
    expect(row).toContain('<td class="status">approved</td>')

    expect((await api('POST', '/plugins/bad-yaml/decision', { status: 'blocked' })).status).toBe(200)
    expect(await (await api('GET', '/policies/bad-yaml')).json()).toMatchObject({
      status: 'blocked',
      grants: [{ type: 'cache', access: ['read'], scope: ['bad:*'] }],
      limits: { memory_mb: 64 },
    })
  })

  it('tells that a pending plugin lacks the administrator’s grant, not a line of plugin.yaml; approving it clears the error', async () => {
    const pending = (await (await api('GET', '/plugins/hello-grpc')).json()) as {
      lastError: { code: string; message: string }
    }
    expect(pending.lastError.code).toBe('permission_denied')
    expect(pending.lastError.message).toMatch(
      /plugin\.yaml asks for db write, but the plugin is pending review/,
    )
    expect(pending.lastError.message).not.toMatch(/ask for db write in plugin\.yaml/)

    expect((await api('POST', '/plugins/hello-grpc/decision', { status: 'approved' })).status).toBe(200)
    const approved = (await (await api('GET', '/plugins/hello-grpc')).json()) as Record<string, unknown>
    expect(approved).toMatchObject({ state: 'running' })
    expect(approved.lastError).toBeUndefined()
    expect(await adminPage('/admin/plugins/hello-grpc')).not.toContain('<p class="error">')
  })

  it('keeps a caller’s bad request out of the plugin’s lastError', async () => {
    const bad = await fetch(`${host.url}/plugins/hello-wasm/greet`, { method: 'POST', body: '{}' })
    expect(bad.status).toBe(400)
    expect(await bad.json()).toMatchObject({ code: 'invalid_argument' })
    const info = (await (await api('GET', '/plugins/hello-wasm')).json()) as Record<string, unknown>
    expect(info.metrics).toMatchObject({ errors: { invalid_argument: 1 } })
    expect(info.lastError).toBeUndefined()
    expect(await adminPage('/admin/plugins/hello-wasm')).not.toContain('<p class="error">')
  })

  it('refuses a blocked plugin’s routes with 403 saying so, and shows it not ready', async () => {
    expect((await api('POST', '/plugins/hello-wasm/decision', { status: 'blocked' })).status).toBe(200)
    const refused = await fetch(`${host.url}/plugins/hello-wasm/greet`, { method: 'POST', body: '{}' })
    expect(refused.status).toBe(403)
    expect(await refused.json()).toEqual({
      code: 'permission_denied',
      message: expect.stringMatching(/plugin hello-wasm is blocked/),
    })
    // A path no plugin has is still 404.
    expect((await fetch(`${host.url}/plugins/nobody/greet`)).status).toBe(404)
    expect(await (await api('GET', '/plugins/hello-wasm')).json()).toMatchObject({
      state: 'blocked',
      health: { ready: false },
    })
    const row = (await adminPage('/admin/plugins')).split('data-plugin="hello-wasm"')[1]?.split('</tr>')[0]
    expect(row).toContain('<td>not ready</td>')
  })

  it('says why a gRPC plugin that crashed after its handshake exited: its stderr, logged at warn', async () => {
    expect((await fetch(`${host.url}/plugins/crasher/crash`)).status).toBe(200)
    await vi.waitFor(
      () => {
        const restart = host.manager.get('crasher')?.history.find((t) => t.to === 'degraded')
        expect(restart?.reason).toMatch(/exited with code 3; stderr: Error: the disk is full/)
      },
      { timeout: 10_000 },
    )
    expect(await adminPage('/admin/plugins/crasher')).toContain(
      '<li class="log log-warn">[warn] Error: the disk is full</li>',
    )
  })
})

/** An admin page's HTML. */
async function adminPage(url: string): Promise<string> {
  const res = await fetch(`${host.url}${url}`, { headers: { cookie: admin.cookie, accept: 'text/html' } })
  expect(res.status).toBe(200)
  return res.text()
}
