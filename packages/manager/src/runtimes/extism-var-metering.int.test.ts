import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { defaultLimits, effectiveGrant } from '@corral/manifest'
import type { EffectiveGrant, Plugin } from '@corral/types'
import { isPluginError } from '@corral/types'
import { createWasmRunner, fromExtismManifest } from '@corral/wasm-runner'
import { behaviourPluginWat, compileWat } from '@corral/wasm-runner/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Backends, createBackends } from '../backends/create-backends.js'
import { createSandboxedHostApi, type SandboxedHostApi } from '../host-api/sandboxed-host-api.js'

/**
 * An Extism plugin's vars are kept by the runner, not by a host method; a var access is host work
 * all the same, counted against the plugin's rate limits by the real sandboxed host API of
 * @corral/manager (embedded backends).
 */
describe('Extism var_set under the sandboxed host API', () => {
  const runner = createWasmRunner()
  let dir: string
  let backends: Backends
  let hostApi: SandboxedHostApi
  const grants = new Map<string, EffectiveGrant>()

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'corral-extism-metering-'))
    await writeFile(path.join(dir, 'plugin.wasm'), await compileWat(behaviourPluginWat))
    // Empty URLs: the embedded set whatever the environment says.
    backends = await createBackends({ databaseUrl: '', redisUrl: '' })
    hostApi = createSandboxedHostApi({
      backends,
      grants: (plugin) => grants.get(plugin) as EffectiveGrant,
      logger: { log() {} },
    })
  })
  afterAll(async () => {
    await runner.close()
    await backends?.close()
    await rm(dir, { recursive: true, force: true })
  })

  async function load(name: string, callsPerSecond: number): Promise<Plugin> {
    const { manifest } = await fromExtismManifest({ wasm: [{ path: 'plugin.wasm' }] }, { name, dir })
    const grant = effectiveGrant(manifest.resources, {
      plugin: name,
      status: 'approved',
      grants: [],
      limits: { ...defaultLimits, memory_mb: 64, call_timeout: 10_000 },
      rate_limits: {
        calls_per_second: callsPerSecond,
        db_queries_per_minute: 10,
        http_requests_per_minute: 10,
      },
    })
    grants.set(name, grant)
    const plugin = await runner.load({ manifest, dir, grant, hostApi: hostApi.forPlugin(name) })
    await plugin.init({})
    return plugin
  }

  it('counts every var_set as a host call: a flood of them is rate_limited', async () => {
    const flooder = await load('var-flooder', 20)
    // 1000 var_set in one call, 20 host calls a second allowed.
    const error = await flooder.call('flood_vars').catch((e: unknown) => e)
    expect(isPluginError(error) && error.code).toBe('rate_limited')
    const counted = hostApi.metrics('var-flooder')['var-flooder']?.['extism.var_set']
    expect(counted?.failures.rate_limited).toBeGreaterThan(0)
    // Another plugin's budget is its own.
    const other = await load('var-calm', 10_000)
    expect(await other.call('flood_vars')).toBeNull()
  })
})
