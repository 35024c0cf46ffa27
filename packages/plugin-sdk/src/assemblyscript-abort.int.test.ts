import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { defaultPolicy, effectiveGrant, loadManifest } from '@corral/manifest'
import type { Plugin } from '@corral/types'
import { createWasmRunner } from '@corral/wasm-runner'
import { main as asc } from 'assemblyscript/asc'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

// A real AssemblyScript plugin, compiled here from fixtures/aborting-plugin with the SDK, whose
// `abort` is the host's `env.abort` (the WASM runner's): what an author sees when an assertion fails.
const fixture = fileURLToPath(new URL('../fixtures/aborting-plugin/', import.meta.url))

describe('an AssemblyScript abort (env.abort)', () => {
  // Quiet: the supervisor logs each lost instance, which these tests cause on purpose.
  const runner = createWasmRunner({ logger: { log() {} } })
  let out: string
  let plugin: Plugin

  beforeAll(async () => {
    out = await mkdtemp(path.join(tmpdir(), 'corral-abort-'))
    const wasm = path.join(out, 'build/plugin.wasm')
    const built = await asc([
      path.join(fixture, 'assembly/index.ts'),
      '--outFile',
      wasm,
      '--runtime',
      'incremental',
      '--exportStart',
      '_initialize',
    ])
    if (built.error) throw new Error(`asc failed: ${built.stderr.toString()}`)
    const { manifest } = await loadManifest(fixture)
    const grant = effectiveGrant(manifest.resources, { ...defaultPolicy(manifest.name), status: 'approved' })
    plugin = await runner.load({ manifest, dir: out, grant, hostApi: async () => ({}) })
    await plugin.init({})
  }, 60_000)

  afterAll(async () => {
    await runner.close()
    await rm(out, { recursive: true, force: true })
  })

  it('fails the call with plugin_trap carrying the message and file:line:col', async () => {
    expect(await plugin.call('check', { gauge: 3 })).toBe(3)
    const error = await plugin.call('check', { gauge: 11 }).catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'plugin_trap', plugin: 'aborting' })
    expect((error as Error).message).toMatch(
      /trap in check: abort: the gauge went past 10 at .*aborting-plugin\/assembly\/index\.ts:12:5/,
    )
  })

  it('serves again after the trap, on a fresh instance', async () => {
    expect(await plugin.call('check', { gauge: 10 })).toBe(10)
  })

  it('carries at most a bounded part of a long message', async () => {
    const error = await plugin.call('shout').catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'plugin_trap' })
    const message = (error as Error).message
    // The plugin's message is 5,000 characters: the host keeps a part and marks the cut.
    expect(message).toMatch(/abort: a+… at /)
    expect(message).not.toContain('a'.repeat(1001))
  })
})
