import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { createPluginManager } from '@corral/manager'
import { loadPolicies } from '@corral/manifest'
import { afterAll, describe, expect, it } from 'vitest'
import { startHost } from './host.js'
import { appDir, examplesDir, postSession, signInAt } from './testing/test-host.js'

// The embedded host keeps what matters in its data folder: a second start over the same folder has
// the same users, sessions' secret and policies. The first start made a password and said so once.
const root = await mkdtemp(path.join(os.tmpdir(), 'corral-host-restart-'))
// stats runs (approved, as policies.yaml has it), so that its job is scheduled.
const policies = (await loadPolicies(path.join(appDir, 'policies.yaml'))).filter((p) => p.plugin === 'stats')
afterAll(() => rm(root, { recursive: true, force: true }))

const start = () =>
  startHost({
    dataDir: path.join(root, 'data'),
    pluginsDir: examplesDir,
    policies,
    hostVersion: '0.1.0',
    port: 0,
    templatesDir: path.join(appDir, 'templates'),
    createManager: (options) => createPluginManager({ ...options, watch: false }),
    logLevel: 'error',
    server: { logger: false },
  })

describe('an embedded host started twice on one data folder', () => {
  it('keeps the administrator, the policies decided and the jobs disabled in between', async () => {
    const first = await start()
    const password = first.firstAdmin?.generatedPassword
    try {
      expect(password).toMatch(/^[A-Za-z0-9_-]{16}$/)
      const { cookie, csrf: csrfToken } = await signInAt(first.url, 'admin', password as string)
      const decided = await fetch(`${first.url}/api/v1/plugins/hello-wasm/decision`, {
        method: 'POST',
        headers: { cookie, 'x-csrf-token': csrfToken, 'content-type': 'application/json' },
        body: JSON.stringify({ status: 'blocked' }),
      })
      expect(decided.status).toBe(200)
      const disabled = await fetch(`${first.url}/api/v1/jobs/stats/rollup`, {
        method: 'PUT',
        headers: { cookie, 'x-csrf-token': csrfToken, 'content-type': 'application/json' },
        body: JSON.stringify({ enabled: false }),
      })
      expect(disabled.status).toBe(200)
      expect(await disabled.json()).toMatchObject({ plugin: 'stats', id: 'rollup', enabled: false })
    } finally {
      await first.close()
    }

    const second = await start()
    try {
      expect(second.firstAdmin).toBeUndefined()
      expect((await postSession(second.url, 'admin', password as string)).status).toBe(200)
      expect((await postSession(second.url, 'admin', 'not-the-password')).status).toBe(401)
      expect(second.manager.get('hello-wasm')?.policy?.status).toBe('blocked')
      // The job switched off before the restart stays off (its registration enables it).
      const rollup = second.manager.jobs.list().find((j) => j.plugin === 'stats' && j.id === 'rollup')
      expect(rollup).toMatchObject({ enabled: false })
    } finally {
      await second.close()
    }
  })
})
