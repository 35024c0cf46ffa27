import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { Agent, request as httpRequest } from 'node:http'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createBackends, createPluginManager } from '@corral/manager'
import type { ResourcePolicy } from '@corral/types'
import { createWasmRunner } from '@corral/wasm-runner'
import { compileWat } from '@corral/wasm-runner/testing'
import Fastify from 'fastify'
import { createUsersStore } from '../../../apps/host/src/auth/users-store.js'
import { createQuietHostServer, signIn } from '../../../apps/host/src/testing/fake-host.js'
import { type BenchReport, measureThroughput } from '../harness.js'
import { echoWat, payload } from './wasm.js'

const agent = new Agent({ keepAlive: true, maxSockets: 16 })
const body = JSON.stringify(payload)

/** One POST on a kept-alive connection; rejects on any status but 200. */
function post(url: string, headers: Record<string, string> = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { method: 'POST', agent, headers: { 'content-type': 'application/json', ...headers } },
      (res) => {
        res.resume()
        res.on('end', () =>
          res.statusCode === 200 ? resolve() : reject(new Error(`${url}: HTTP ${res.statusCode}`)),
        )
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

/**
 * `host.route`: requests per second to a WASM plugin's route through the whole host (session
 * lookup, CSRF check, the `auth` route check, the manager's route table, the call, the response),
 * beside a bare fastify route in the same process that answers the same JSON.
 */
export default async function host(report: BenchReport): Promise<void> {
  const root = await mkdtemp(path.join(tmpdir(), 'corral-bench-host-'))
  const pluginDir = path.join(root, 'plugins', 'bench-echo')
  await mkdir(pluginDir, { recursive: true })
  await writeFile(path.join(pluginDir, 'echo.wasm'), await compileWat(echoWat))
  await writeFile(
    path.join(pluginDir, 'plugin.yaml'),
    'name: bench-echo\nversion: 0.1.0\nruntime: wasm\nentry: {wasm: echo.wasm}\nwasm: {pool: {max_instances: 2, wait_timeout: 5s}}\n' +
      'provides:\n  routes:\n    - {method: POST, path: /echo, handler: echo, middleware: [auth]}\n',
  )
  const policy = {
    plugin: 'bench-echo',
    status: 'approved',
    grants: [],
    rate_limits: { calls_per_second: 1e6 },
    limits: { call_timeout: 5_000 },
  } as unknown as ResourcePolicy
  const backends = await createBackends({ sqlitePath: ':memory:' })
  const wasm = createWasmRunner()
  const manager = createPluginManager({
    pluginsDir: path.join(root, 'plugins'),
    hostVersion: '1.0.0',
    backends,
    logger: { log() {} },
    runners: { wasm },
    policies: [policy],
  })
  const bare = Fastify({ logger: false })
  bare.post('/echo', async (request) => request.body)
  const users = createUsersStore(backends.database)
  try {
    await manager.start()
    await users.migrate()
    await users.create({ username: 'bench', password: 'bench-password' })
    const server = await createQuietHostServer(manager, users, backends.database)
    const hostUrl = await server.app.listen({ port: 0, host: '127.0.0.1' })
    const bareUrl = await bare.listen({ port: 0, host: '127.0.0.1' })
    const session = await signIn(server, 'bench', 'bench-password')
    const headers = { cookie: session.cookie, 'x-csrf-token': session.csrf }
    const requests = (fn: () => Promise<void>) => () => measureThroughput(fn, { total: 3_000, inFlight: 16 })
    await report.addInRounds([
      { name: 'baseline.host.route (bare fastify)', measure: requests(() => post(`${bareUrl}/echo`)) },
      {
        name: 'host.route',
        measure: requests(() => post(`${hostUrl}/plugins/bench-echo/echo`, headers)),
        baseline: 'baseline.host.route (bare fastify)',
        target: { kind: 'min_ratio', value: 0.5 },
      },
    ])
    await server.close()
  } finally {
    agent.destroy()
    await bare.close()
    await manager.close()
    await wasm.close()
    await backends.close()
    await rm(root, { recursive: true, force: true })
  }
}
