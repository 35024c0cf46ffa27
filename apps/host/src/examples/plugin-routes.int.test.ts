import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { createPluginManager } from '@corral/manager'
import { parsePolicy } from '@corral/manifest'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type RunningHost, startHost } from '../host.js'
import { adminPassword, appDir, examplesDir, signInAt } from '../testing/test-host.js'

// The routes of the plugins `corral new --template grpc-ts|grpc-go` writes, and of the example
// plugins, under a real host and called over HTTP as a client calls them: the host calls a route's
// handler with the RouteRequest it makes of the request, and the handler answers the request's
// JSON body (or query, or path).
const cli = path.resolve(appDir, '../../packages/cli/dist/bin.js')
const examples = ['hello-grpc', 'hello-wasm', 'c-wasm', 'go-kv']
const templates = { 'greeter-ts': 'grpc-ts', 'greeter-go': 'grpc-go' }
const cache = (scope: string) => ({ type: 'cache', access: ['read', 'write'], scope: [scope] })

let root: string
let host: RunningHost

beforeAll(async () => {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: build packages/cli first`)
  root = await mkdtemp(path.join(tmpdir(), 'corral-routes-'))
  const pluginsDir = path.join(root, 'plugins')
  await mkdir(pluginsDir)
  for (const name of examples) await symlink(path.join(examplesDir, name), path.join(pluginsDir, name))
  const corral = promisify(execFile)
  for (const [name, template] of Object.entries(templates)) {
    await corral(process.execPath, [cli, 'new', name, '--template', template], { cwd: pluginsDir })
    await corral(process.execPath, [cli, 'build', name], { cwd: pluginsDir })
  }
  const approved = (plugin: string, grants: object[]) => parsePolicy({ plugin, status: 'approved', grants })
  host = await startHost({
    dataDir: path.join(root, 'data'),
    pluginsDir,
    policies: [
      approved('greeter-ts', [cache('greetings:*')]),
      approved('greeter-go', [cache('greetings:*')]),
      approved('hello-wasm', [cache('greetings:*')]),
      approved('hello-grpc', [
        { type: 'db', access: ['read', 'write'], scope: ['hello_grpc_*'] },
        cache('*'),
      ]),
      approved('c-wasm', []),
      approved('go-kv', [cache('kv:*')]),
    ],
    hostVersion: '0.1.0',
    port: 0,
    adminPassword,
    templatesDir: path.join(appDir, 'templates'),
    createManager: createPluginManager,
    logLevel: 'warn',
    server: { logger: false },
  })
}, 300_000)

afterAll(async () => {
  await host?.close()
  if (root !== undefined) await rm(root, { recursive: true, force: true })
})

/** A request to the host as `curl` sends it: a JSON body with its content type. */
async function request(
  method: string,
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${host.url}${url}`, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  return { status: res.status, json: await res.json() }
}

describe('plugin routes over HTTP, as a client calls them', { timeout: 60_000 }, () => {
  it('loads the plugins the templates make, and the examples', () => {
    const failed = host.manager.list().filter((p) => p.state !== 'running')
    expect(failed.map((p) => [p.name, p.state, p.lastError])).toEqual([])
  })

  it.each(Object.keys(templates))(
    '%s (corral new) answers POST /greet with the JSON body it is sent',
    async (name) => {
      expect(await request('POST', `/plugins/${name}/greet`, { name: 'Ada' })).toEqual({
        status: 200,
        json: { message: 'Hello, Ada!', count: 1 },
      })
      expect(await request('POST', `/plugins/${name}/greet`, { name: 'Ada' })).toMatchObject({
        json: { count: 2 },
      })
      expect(await request('POST', `/plugins/${name}/greet`, { name: '' })).toMatchObject({
        status: 400,
        json: { code: `${name}:missing_name` },
      })
    },
  )

  it('greeter-ts refuses a body without a name with 400 invalid_argument, and a body that is not JSON', async () => {
    expect(await request('POST', '/plugins/greeter-ts/greet', {})).toMatchObject({
      status: 400,
      json: { code: 'invalid_argument', fields: [{ field: 'name' }] },
    })
    const notJson = await fetch(`${host.url}/plugins/greeter-ts/greet`, { method: 'POST', body: 'name=Ada' })
    expect(notJson.status).toBe(400)
    expect(await notJson.json()).toMatchObject({ code: 'invalid_argument' })
  })

  it('hello-grpc answers POST /greet, and POST /notes and GET /stats to a signed-in user', async () => {
    expect(await request('POST', '/plugins/hello-grpc/greet', { name: 'Ada' })).toMatchObject({
      status: 200,
      json: { text: 'Hello, Ada!' },
    })
    const { cookie, csrf } = await signInAt(host.url, 'admin', adminPassword)
    const signedIn = { cookie, 'x-csrf-token': csrf }
    const note = { day: '2026-11-21', text: 'routes read their body' }
    expect(await request('POST', '/plugins/hello-grpc/notes', note, signedIn)).toEqual({
      status: 200,
      json: { ok: true },
    })
    expect(await request('GET', '/plugins/hello-grpc/stats', undefined, signedIn)).toEqual({
      status: 200,
      json: { days: [{ day: '2026-11-21', notes: 1 }] },
    })
  })

  it('hello-wasm answers POST /greet with the JSON body it is sent', async () => {
    expect(await request('POST', '/plugins/hello-wasm/greet', { name: 'Ada' })).toEqual({
      status: 200,
      json: { message: 'Hello, Ada!', count: 1 },
    })
  })

  it('c-wasm counts the text of a JSON body, as it counts that of the query', async () => {
    const counts = { chars: 8, words: 2, vowels: 3 }
    expect(await request('POST', '/plugins/c-wasm/count', { text: 'hi there' })).toEqual({
      status: 200,
      json: counts,
    })
    expect(await request('POST', '/plugins/c-wasm/count?text=hi%20there')).toEqual({
      status: 200,
      json: counts,
    })
  })

  it('go-kv stores, reads and deletes the key of the path, for a signed-in user', async () => {
    const { cookie, csrf } = await signInAt(host.url, 'admin', adminPassword)
    const signedIn = { cookie, 'x-csrf-token': csrf }
    expect(await request('PUT', '/plugins/go-kv/kv/colour', { value: 'teal' }, signedIn)).toEqual({
      status: 200,
      json: { ok: true },
    })
    expect(await request('GET', '/plugins/go-kv/kv/colour', undefined, signedIn)).toEqual({
      status: 200,
      json: { key: 'colour', value: 'teal' },
    })
    // The body outranks the query, also where the two spell a name in other cases (Go binds names
    // regardless of case, and "VALUE" sorts before "value").
    expect(await request('PUT', '/plugins/go-kv/kv/colour?value=grey', { VALUE: 'navy' }, signedIn)).toEqual({
      status: 200,
      json: { ok: true },
    })
    expect(await request('GET', '/plugins/go-kv/kv/colour', undefined, signedIn)).toEqual({
      status: 200,
      json: { key: 'colour', value: 'navy' },
    })
    expect(await request('DELETE', '/plugins/go-kv/kv/colour', undefined, signedIn)).toEqual({
      status: 200,
      json: { deleted: true },
    })
  })
})
