import { request } from 'node:http'
import { freshPostgresDatabase } from '@corral/manager/testing'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import './testing/provided-context.js'
import { adminPassword, startTestHost, type TestHost } from './testing/test-host.js'

// Two host replicas on one PostgreSQL database and one Redis: what an administrator does on one,
// and what a plugin publishes on one, reaches the other.
let replicas: TestHost[] = []

beforeAll(async () => {
  const databaseUrl = await freshPostgresDatabase('host_replicas')
  const redisUrl = `${inject('redisUrl')}/0`
  for (let i = 0; i < 2; i++)
    replicas.push(
      await startTestHost({ plugins: ['stats', 'c-wasm'], approved: ['stats'], databaseUrl, redisUrl }),
    )
})
afterAll(async () => {
  await Promise.allSettled(replicas.map((r) => r.stop()))
  replicas = []
})

/** Signs in on `host` through the JSON session: the cookie header and CSRF token of later calls. */
async function signIn(host: TestHost) {
  const res = await fetch(`${host.url}/api/v1/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: adminPassword }),
  })
  expect(res.status).toBe(200)
  const cookie = res.headers
    .getSetCookie()
    .map((c) => c.split(';', 1)[0])
    .join('; ')
  return { cookie, csrf: ((await res.json()) as { csrfToken: string }).csrfToken }
}

describe('two host replicas on PostgreSQL and Redis', () => {
  it('share a policy change: approving on one serves the route on the other', async () => {
    const [a, b] = replicas as [TestHost, TestHost]
    const route = (host: TestHost) =>
      fetch(`${host.url}/plugins/c-wasm/count?text=shared`, { method: 'POST' })
    expect((await route(a)).status).toBe(403)
    expect((await route(b)).status).toBe(403)
    const admin = await signIn(a)
    const decided = await fetch(`${a.url}/api/v1/plugins/c-wasm/decision`, {
      method: 'POST',
      headers: { cookie: admin.cookie, 'x-csrf-token': admin.csrf, 'content-type': 'application/json' },
      body: JSON.stringify({ status: 'approved' }),
    })
    expect(decided.status).toBe(200)
    await expect.poll(async () => (await route(b)).status, { timeout: 10_000 }).toBe(200)
  })

  it('share an event: a plugin event on one reaches the other’s live stream', async () => {
    const [a, b] = replicas as [TestHost, TestHost]
    // One session, valid on both: sessions live in the shared database.
    const admin = await signIn(a)
    const received = new Promise<string>((resolve, reject) => {
      const req = request(`${b.url}/events/stream`, { headers: { cookie: admin.cookie } }, (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => {
          text += chunk
          if (text.includes('stats.updated')) {
            resolve(text)
            req.destroy()
          }
        })
      })
      req.on('error', reject)
      req.end()
    })
    // The stream is open once B has answered its headers; then the rollup runs on A.
    await new Promise((r) => setTimeout(r, 500))
    const rollup = await fetch(`${a.url}/plugins/stats/rollup`, {
      method: 'POST',
      headers: { cookie: admin.cookie, 'x-csrf-token': admin.csrf },
    })
    expect(rollup.status).toBe(200)
    expect(await received).toContain('event: event')
  })
})
