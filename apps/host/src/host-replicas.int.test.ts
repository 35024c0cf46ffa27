import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { type IncomingMessage, request } from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { freshPostgresDatabase } from '@corral/manager/testing'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import './testing/provided-context.js'
import { adminPassword, examplesDir, signInAt, startTestHost, type TestHost } from './testing/test-host.js'

// Two host replicas on one PostgreSQL database and one Redis, over one plugins folder (as replicas
// of one image): what an administrator does on one, and what a plugin publishes on one, reaches
// the other.
let replicas: TestHost[] = []
let shared: string
/** The folder of `c-wasm`: a copy, so a test can change its version on disk. */
let cWasmDir: string

beforeAll(async () => {
  shared = await mkdtemp(path.join(os.tmpdir(), 'corral-replicas-'))
  const pluginsDir = path.join(shared, 'plugins')
  cWasmDir = path.join(pluginsDir, 'c-wasm')
  await mkdir(cWasmDir, { recursive: true })
  await cp(path.join(examplesDir, 'c-wasm', 'plugin.yaml'), path.join(cWasmDir, 'plugin.yaml'))
  await cp(path.join(examplesDir, 'c-wasm', 'build'), path.join(cWasmDir, 'build'), { recursive: true })
  await symlink(path.join(examplesDir, 'stats'), path.join(pluginsDir, 'stats'))
  const databaseUrl = await freshPostgresDatabase('host_replicas')
  const redisUrl = `${inject('redisUrl')}/0`
  for (let i = 0; i < 2; i++)
    replicas.push(
      await startTestHost({ plugins: [], approved: ['stats'], pluginsDir, databaseUrl, redisUrl }),
    )
})
afterAll(async () => {
  await Promise.allSettled(replicas.map((r) => r.stop()))
  replicas = []
  await rm(shared, { recursive: true, force: true })
})

describe('two host replicas on PostgreSQL and Redis', () => {
  it('share a policy change: approving on one serves the route on the other', async () => {
    const [a, b] = replicas as [TestHost, TestHost]
    const route = (host: TestHost) =>
      fetch(`${host.url}/plugins/c-wasm/count?text=shared`, { method: 'POST' })
    expect((await route(a)).status).toBe(403)
    expect((await route(b)).status).toBe(403)
    const admin = await signInAt(a.url, 'admin', adminPassword)
    const decided = await fetch(`${a.url}/api/v1/plugins/c-wasm/decision`, {
      method: 'POST',
      headers: { cookie: admin.cookie, 'x-csrf-token': admin.csrf, 'content-type': 'application/json' },
      body: JSON.stringify({ status: 'approved' }),
    })
    expect(decided.status).toBe(200)
    await expect.poll(async () => (await route(b)).status, { timeout: 10_000 }).toBe(200)
    // B serves the route once its policy store says approved, and runs the plugin under the approved
    // grant once it has applied the policy A's command told it of (a reload): until then, that
    // reload could land in a later test.
    await expect.poll(() => b.manager.get('c-wasm')?.grant?.status, { timeout: 10_000 }).toBe('approved')
  })

  it('share an event: a plugin event on one reaches the other’s live stream', async () => {
    const [a, b] = replicas as [TestHost, TestHost]
    // One session, valid on both: sessions live in the shared database.
    const admin = await signInAt(a.url, 'admin', adminPassword)
    // B adds the stream to its clients as it answers the headers; then the rollup runs on A.
    const stream = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = request(`${b.url}/events/stream`, { headers: { cookie: admin.cookie } }, resolve)
      req.on('error', reject)
      req.end()
    })
    const received = new Promise<string>((resolve, reject) => {
      let text = ''
      stream.setEncoding('utf8')
      stream.on('data', (chunk: string) => {
        text += chunk
        if (text.includes('stats.updated')) {
          resolve(text)
          stream.destroy()
        }
      })
      stream.on('error', reject)
    })
    const rollup = await fetch(`${a.url}/plugins/stats/rollup`, {
      method: 'POST',
      headers: { cookie: admin.cookie, 'x-csrf-token': admin.csrf },
    })
    expect(rollup.status).toBe(200)
    expect(await received).toContain('event: event')
  })

  it('share a reload: reloading on one runs the new version on the other', async () => {
    const [a, b] = replicas as [TestHost, TestHost]
    const admin = await signInAt(a.url, 'admin', adminPassword)
    const headers = { cookie: admin.cookie, 'x-csrf-token': admin.csrf }
    const manifest = path.join(cWasmDir, 'plugin.yaml')
    await writeFile(manifest, (await readFile(manifest, 'utf8')).replace('version: 0.1.0', 'version: 0.2.0'))
    const reloaded = await fetch(`${a.url}/api/v1/plugins/c-wasm/reload`, { method: 'POST', headers })
    expect(reloaded.status).toBe(200)
    expect(await reloaded.json()).toMatchObject({ version: '0.2.0' })
    const onB = async () =>
      (await (await fetch(`${b.url}/api/v1/plugins/c-wasm`, { headers })).json()) as {
        version: string
        history: Array<{ reason: string }>
      }
    await expect.poll(async () => (await onB()).version, { timeout: 10_000 }).toBe('0.2.0')
    expect((await onB()).history.at(-1)?.reason).toMatch(/^reloaded on replica .+: 0\.1\.0 → 0\.2\.0$/)
  })

  it('share an unload: unloading on one stops the route on the other', async () => {
    const [a, b] = replicas as [TestHost, TestHost]
    const admin = await signInAt(a.url, 'admin', adminPassword)
    const route = () => fetch(`${b.url}/plugins/c-wasm/count?text=gone`, { method: 'POST' })
    expect((await route()).status).not.toBe(404)
    const unloaded = await fetch(`${a.url}/api/v1/plugins/c-wasm/unload`, {
      method: 'POST',
      headers: { cookie: admin.cookie, 'x-csrf-token': admin.csrf },
    })
    expect(unloaded.status).toBe(200)
    // B withdraws the route first, then drains and stops the plugin, and only then forgets it: the
    // unload has run on B once B no longer lists it.
    await expect.poll(() => b.manager.get('c-wasm'), { timeout: 10_000 }).toBeUndefined()
    expect((await route()).status).toBe(404)
  })
})
