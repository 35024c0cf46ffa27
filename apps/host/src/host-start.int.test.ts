import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { createPluginManager } from '@corral/manager'
import { parsePolicy } from '@corral/manifest'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type HostOptions, type RunningHost, startHost } from './host.js'
import { appDir, postSession } from './testing/test-host.js'

// How a real host starts over a data folder of its own: a start that fails leaves no administrator
// behind whose generated password no one saw, and plugins that hang before their handshake delay
// readiness, not the probes.
let root: string
const started: RunningHost[] = []

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'corral-host-start-'))
})
afterAll(async () => {
  await Promise.all(started.map((host) => host.close().catch(() => {})))
  await rm(root, { recursive: true, force: true })
})

const options = (dataDir: string, pluginsDir: string, more: Partial<HostOptions> = {}): HostOptions => ({
  dataDir,
  pluginsDir,
  policies: [],
  hostVersion: '0.1.0',
  port: 0,
  templatesDir: path.join(appDir, 'templates'),
  createManager: (managerOptions) => createPluginManager({ ...managerOptions, watch: false, jobs: false }),
  logLevel: 'error',
  ...more,
  server: { logger: false, ...more.server },
})

async function start(host: Promise<RunningHost>): Promise<RunningHost> {
  const running = await host
  started.push(running)
  return running
}

/** A port nothing listens on now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

/** A gRPC plugin whose process starts and never prints its handshake line. */
async function hangingPlugin(pluginsDir: string, name: string): Promise<void> {
  const dir = path.join(pluginsDir, name)
  await mkdir(dir, { recursive: true })
  await writeFile(path.join(dir, 'hang.mjs'), 'setInterval(() => {}, 1000)\n')
  await writeFile(
    path.join(dir, 'plugin.yaml'),
    `name: ${name}\nversion: 0.1.0\nruntime: grpc\nentry:\n  node: hang.mjs\nresources:\n  init_timeout: 2s\n`,
  )
}

describe('starting a host', () => {
  it('creates the first administrator only once a start succeeds, so its generated password is shown', async () => {
    const dataDir = path.join(root, 'first-admin')
    const pluginsDir = path.join(root, 'empty-plugins')
    await mkdir(pluginsDir, { recursive: true })

    // The port is taken: the start fails.
    const taken = createServer()
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
    const { port } = taken.address() as { port: number }
    try {
      await expect(startHost(options(dataDir, pluginsDir, { port }))).rejects.toMatchObject({
        code: 'EADDRINUSE',
      })
    } finally {
      await new Promise((resolve) => taken.close(resolve))
    }
    // The plugins folder is missing: the start fails.
    await expect(startHost(options(dataDir, path.join(root, 'no-such-folder')))).rejects.toThrow(/ENOENT/)

    const host = await start(startHost(options(dataDir, pluginsDir)))
    const password = host.firstAdmin?.generatedPassword
    expect(password).toMatch(/^[A-Za-z0-9_-]{16}$/)
    expect((await postSession(host.url, 'admin', password as string)).status).toBe(200)
  })

  it('refuses a first administrator password bcrypt would cut (over 72 bytes), naming CORRAL_ADMIN_PASSWORD', async () => {
    const pluginsDir = path.join(root, 'empty-plugins')
    await mkdir(pluginsDir, { recursive: true })
    await expect(
      startHost(options(path.join(root, 'long-password'), pluginsDir, { adminPassword: 'é'.repeat(37) })),
    ).rejects.toMatchObject({
      code: 'invalid_argument',
      message: expect.stringMatching(/CORRAL_ADMIN_PASSWORD: a password has at most 72 bytes/),
    })
  })

  it('answers /healthz while plugins that hang before their handshake load, and /readyz once they have', async () => {
    const pluginsDir = path.join(root, 'hanging-plugins')
    await hangingPlugin(pluginsDir, 'hang-one')
    await hangingPlugin(pluginsDir, 'hang-two')
    const policies = ['hang-one', 'hang-two'].map((plugin) => parsePolicy({ plugin, status: 'approved' }))
    const port = await freePort()
    const url = `http://127.0.0.1:${port}`
    const began = Date.now()
    const starting = start(startHost(options(path.join(root, 'hanging'), pluginsDir, { port, policies })))
    let settled = false
    void starting.finally(() => {
      settled = true
    })

    // Alive at once, not ready until the plugins folder has loaded.
    let healthz: Response | undefined
    while (healthz === undefined) {
      healthz = await fetch(`${url}/healthz`).catch(() => undefined)
      if (healthz === undefined) await new Promise((resolve) => setTimeout(resolve, 50))
    }
    expect(healthz.status).toBe(200)
    const loading = await fetch(`${url}/readyz`)
    expect(settled).toBe(false)
    expect(loading.status).toBe(503)
    expect(await loading.json()).toEqual({ status: 'not ready', checks: { pluginsLoaded: false } })
    expect(Date.now() - began).toBeLessThan(2_000)
    // What would load, unload or decide on a plugin waits for the start's own load.
    for (const changing of [
      `${url}/api/v1/plugins/hang-two/reload`,
      `${url}/admin/plugins/hang-two/decision`,
    ]) {
      const meanwhile = await fetch(changing, { method: 'POST' })
      expect(meanwhile.status).toBe(503)
      expect(meanwhile.headers.get('retry-after')).toBe('1')
      expect(await meanwhile.json()).toMatchObject({ code: 'unavailable' })
    }

    const host = await starting
    expect(Date.now() - began).toBeGreaterThanOrEqual(4_000)
    expect(host.manager.list().map((p) => [p.name, p.state, p.lastError?.code])).toEqual([
      ['hang-one', 'failed', 'deadline_exceeded'],
      ['hang-two', 'failed', 'deadline_exceeded'],
    ])
    const ready = await fetch(`${url}/readyz`)
    expect(ready.status).toBe(200)
    expect(await ready.json()).toMatchObject({ status: 'ready' })
    // Then such a request meets the usual checks: here, no session.
    expect((await fetch(`${url}/api/v1/plugins/hang-two/reload`, { method: 'POST' })).status).toBe(403)
  })
})
