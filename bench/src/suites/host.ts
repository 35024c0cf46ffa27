import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { Agent, request as httpRequest } from 'node:http'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createBackends, createPluginManager, createSqlAuditLog } from '@corral/manager'
import type { ResourcePolicy } from '@corral/types'
import { createWasmRunner } from '@corral/wasm-runner'
import Fastify from 'fastify'
import { loadHostSecret } from '../../../apps/host/src/auth/host-secret.js'
import { createUsersStore } from '../../../apps/host/src/auth/users-store.js'
import { createLogBuffer } from '../../../apps/host/src/log-buffer.js'
import { createHostServer } from '../../../apps/host/src/server.js'
import { compileWat } from '../compile-wat.js'
import { type BenchReport, type Measurement, measureThroughput } from '../harness.js'
import { echoWat, payload } from './wasm.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const templatesDir = path.resolve(here, '../../../apps/host/templates')
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
 * Measures `a` and `b` in interleaved rounds (a, b, a, b, …, 16 in flight, 20 000 requests each in
 * all), so that both see the same machine: a shared machine's load changes within seconds. Each
 * figure pools the rounds: requests over the time they took; the median of the rounds' medians and p99s.
 */
async function interleaved(
  a: () => Promise<void>,
  b: () => Promise<void>,
): Promise<[Measurement, Measurement]> {
  const rounds = 8
  const options = { total: 2_500, inFlight: 16 }
  const measured: [Measurement[], Measurement[]] = [[], []]
  for (let round = 0; round < rounds; round++) {
    measured[0].push(await measureThroughput(a, options))
    measured[1].push(await measureThroughput(b, options))
  }
  const median = (values: number[]) =>
    values.sort((x, y) => x - y)[Math.floor(values.length / 2)] ?? Number.NaN
  const pool = (ms: Measurement[]): Measurement => ({
    median_us: median(ms.map((m) => m.median_us)),
    p99_us: median(ms.map((m) => m.p99_us)),
    ops_per_s: (options.total * ms.length) / ms.reduce((sum, m) => sum + options.total / m.ops_per_s, 0),
  })
  return [pool(measured[0]), pool(measured[1])]
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
    const server = await createHostServer({
      manager,
      users,
      database: backends.database,
      audit: createSqlAuditLog(backends.database),
      logs: createLogBuffer({ log() {} }),
      secret: await loadHostSecret(backends.database),
      templatesDir,
      logger: false,
    })
    const hostUrl = await server.app.listen({ port: 0, host: '127.0.0.1' })
    const bareUrl = await bare.listen({ port: 0, host: '127.0.0.1' })
    const session = await server.app.inject({
      method: 'POST',
      url: '/api/v1/session',
      payload: { username: 'bench', password: 'bench-password' },
    })
    const headers = {
      cookie: session.cookies.map((c) => `${c.name}=${c.value}`).join('; '),
      'x-csrf-token': (session.json() as { csrfToken: string }).csrfToken,
    }
    const [bareRoute, hostRoute] = await interleaved(
      () => post(`${bareUrl}/echo`),
      () => post(`${hostUrl}/plugins/bench-echo/echo`, headers),
    )
    report.add('baseline.host.route (bare fastify)', bareRoute)
    report.add('host.route', hostRoute, {
      baseline: 'baseline.host.route (bare fastify)',
      target: { kind: 'min_ratio', value: 0.5 },
    })
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
