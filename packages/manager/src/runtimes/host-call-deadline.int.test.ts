import { createGrpcRunner } from '@corral/grpc-runner'
import {
  bareFixturePolicy,
  fixtureManifest,
  fixturesDir,
  grantFor,
  memoryLogger,
} from '@corral/grpc-runner/testing'
import { isPluginError, type Plugin } from '@corral/types'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Backends, createBackends } from '../backends/create-backends.js'
import { createSandboxedHostApi } from '../host-api/sandboxed-host-api.js'

// A host call that lands after its call's deadline but before the host's deadline timer has run
// (the host's event loop was busy) once made the runner return its own rejection and leave the host
// API's: Node then ended the host process on the unhandled rejection. Here the plugin times its
// host calls around its deadline while this process spins through it.
describe('a host call that lands between its call’s deadline and the host’s deadline timer', () => {
  const runner = createGrpcRunner({ logger: memoryLogger().logger })
  const unhandled: unknown[] = []
  const onUnhandled = (reason: unknown) => unhandled.push(reason)
  let backends: Backends
  let plugin: Plugin

  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled)
    backends = await createBackends({ databaseUrl: '', redisUrl: '' })
    const manifest = fixtureManifest('late', 'unary-plugin.mjs', ['late'])
    const grant = grantFor(manifest, { init_timeout: 5000 }, bareFixturePolicy)
    // The real sandboxed host API: it refuses a host call whose calling call is past its deadline.
    const hostApi = createSandboxedHostApi({ backends, grants: () => grant, logger: { log() {} } })
    plugin = await runner.load({ manifest, dir: fixturesDir, grant, hostApi: hostApi.forPlugin('late') })
    await plugin.register()
    await plugin.init({})
  })
  afterAll(async () => {
    await runner.close()
    await backends?.close()
    process.off('unhandledRejection', onUnhandled)
  })

  it('is refused with deadline_exceeded, and nothing escapes as an unhandled rejection', async () => {
    let refusedInWindow = 0
    // The window is a matter of scheduling: try a few times until a host call has landed in it.
    for (let attempt = 0; attempt < 5 && refusedInWindow === 0; attempt++) {
      const started = Date.now()
      const call = plugin.call('late-log', null, { timeoutMs: 400 }).then(
        () => undefined,
        (error: unknown) => error,
      )
      // Busy from well before the deadline to well after it, as a loaded host is: the plugin's host
      // calls (30 ms either side of its deadline) arrive meanwhile and are read before any timer.
      await new Promise((resolve) => setTimeout(resolve, 250))
      while (Date.now() < started + 700) {
        // Spin.
      }
      const error = await call
      expect(isPluginError(error) && error.code).toBe('deadline_exceeded')
      // Every late host call has had its answer once the plugin's call has sent them all.
      await new Promise((resolve) => setTimeout(resolve, 300))
      const answers = (await plugin.call('late-results')) as Array<{
        error?: { code: string; message: string }
      }>
      expect(answers.length).toBeGreaterThan(0)
      for (const answer of answers) {
        expect(answer.error?.code).toMatch(/^(deadline_exceeded|invalid_argument)$/)
      }
      refusedInWindow = answers.filter((a) => a.error?.message.includes('deadline has passed')).length
    }
    expect(refusedInWindow).toBeGreaterThan(0)
    // Give a stray rejection its turn to surface before looking.
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(unhandled).toEqual([])
    expect(await plugin.call('echo', { still: 'serving' })).toEqual({ still: 'serving' })
  })
})
