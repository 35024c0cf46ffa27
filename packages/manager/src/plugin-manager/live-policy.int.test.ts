import { eventually, processesWithCommandLine } from '@corral/grpc-runner/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  approved,
  copyExample,
  failureCode,
  startManager,
  tempPluginsDir,
} from '../testing/plugin-folders.js'
import type { PluginManager } from './manager-api.js'

/**
 * Policy changes applied live to real running plugins: a narrower limit fails a call that passed,
 * a block stops the plugin (its process gone) and refuses its calls, and an approval re-inits a
 * pending plugin with the grant it now has.
 */

const helloWasmGrants = [
  { type: 'cache' as const, access: ['read' as const, 'write' as const], scope: ['greetings:*'] },
]
const helloGrpcGrants = [
  { type: 'db' as const, access: ['read' as const, 'write' as const], scope: ['hello_grpc_*'] },
  { type: 'cache' as const, access: ['read' as const, 'write' as const], scope: ['*'] },
]

describe('policy changes applied to running plugins (hello-wasm pending, hello-grpc approved)', () => {
  let folder: Awaited<ReturnType<typeof tempPluginsDir>>
  let started: Awaited<ReturnType<typeof startManager>>
  let manager: PluginManager
  let grpcDir: string

  beforeAll(async () => {
    folder = await tempPluginsDir()
    await copyExample('hello-wasm', folder.dir)
    grpcDir = await copyExample('hello-grpc', folder.dir)
    // hello-wasm has no policy: it runs pending review, with no grant.
    started = await startManager({
      pluginsDir: folder.dir,
      policies: [approved('hello-grpc', helloGrpcGrants)],
    })
    manager = started.manager
    expect(manager.get('hello-wasm')?.state).toBe('running')
    expect(manager.get('hello-grpc')?.state).toBe('running')
  }, 60_000)

  afterAll(async () => {
    await started?.close()
    await folder?.remove()
  })

  it('approving a pending plugin re-inits it with its new grant: a refused host call is allowed', async () => {
    expect(manager.get('hello-wasm')?.policy?.status).toBe('pending_review')
    // Its cache call is refused: the plugin reports it with its own code.
    expect(await failureCode(manager.call('hello-wasm', 'greet', { name: 'Ada' }))).toBe(
      'hello-wasm:cache_unavailable',
    )
    await manager.setPolicy(approved('hello-wasm', helloWasmGrants))
    const info = manager.get('hello-wasm')
    expect(info?.state).toBe('running')
    expect(info?.grant?.status).toBe('approved')
    expect(info?.grant?.permissions).toEqual(helloWasmGrants)
    expect(info?.history.at(-1)?.reason).toMatch(/^approved: started again with its new grant/)
    expect(await manager.call('hello-wasm', 'greet', { name: 'Ada' })).toEqual({
      message: 'Hello, Ada!',
      count: 1,
    })
  })

  it('a narrower max_output_bytes fails a WASM call that passed, with resource_exhausted', async () => {
    expect(await manager.call('hello-wasm', 'greet', { name: 'Bo' })).toMatchObject({ message: 'Hello, Bo!' })
    await manager.setPolicy(approved('hello-wasm', helloWasmGrants, { limits: { max_output_bytes: 16 } }))
    expect(manager.get('hello-wasm')?.grant?.limits.max_output_bytes).toBe(16)
    expect(await failureCode(manager.call('hello-wasm', 'greet', { name: 'Bo' }))).toBe('resource_exhausted')
    await manager.setPolicy(approved('hello-wasm', helloWasmGrants))
    await eventually(() => manager.get('hello-wasm')?.state === 'running', 20_000, 'running again')
    expect(await manager.call('hello-wasm', 'greet', { name: 'Bo' })).toMatchObject({ message: 'Hello, Bo!' })
  })

  it('a narrower call_timeout fails a gRPC call that passed, with deadline_exceeded', async () => {
    expect(await manager.call('hello-grpc', 'slow', { ms: 600 })).toEqual({ done: true })
    await manager.setPolicy(approved('hello-grpc', helloGrpcGrants, { limits: { call_timeout: 150 } }))
    expect(await failureCode(manager.call('hello-grpc', 'slow', { ms: 600 }))).toBe('deadline_exceeded')
    // The process was not restarted for it: a quick call still passes.
    expect(await manager.call('hello-grpc', 'echo', { n: 1 })).toEqual({ n: 1 })
  })

  it('blocking a running gRPC plugin stops its process and refuses its calls', async () => {
    expect(processesWithCommandLine(grpcDir).length).toBe(1)
    await manager.setPolicy({ ...approved('hello-grpc', helloGrpcGrants), status: 'blocked' })
    expect(manager.get('hello-grpc')?.state).toBe('blocked')
    await eventually(() => processesWithCommandLine(grpcDir).length === 0, 20_000, 'the process to exit')
    expect(await failureCode(manager.call('hello-grpc', 'echo', {}))).toBe('permission_denied')
    const states = started.events.flatMap((e) =>
      e.type === 'plugin.state' && e.plugin === 'hello-grpc' ? [`${e.from}→${e.to}`] : [],
    )
    expect(states.slice(-2)).toEqual(['running→stopping', 'stopping→blocked'])
  })

  it('unblocking it starts it again', async () => {
    await manager.setPolicy(approved('hello-grpc', helloGrpcGrants))
    expect(manager.get('hello-grpc')?.state).toBe('running')
    expect(await manager.call('hello-grpc', 'greet', { name: 'Cy' })).toMatchObject({ text: 'Hello, Cy!' })
    expect(processesWithCommandLine(grpcDir).length).toBe(1)
  })
})

describe('a pending gRPC plugin whose init needs a grant (hello-grpc creates its notes table)', () => {
  let folder: Awaited<ReturnType<typeof tempPluginsDir>>
  let started: Awaited<ReturnType<typeof startManager>>
  let manager: PluginManager

  beforeAll(async () => {
    folder = await tempPluginsDir()
    await copyExample('hello-grpc', folder.dir)
    started = await startManager({ pluginsDir: folder.dir })
    manager = started.manager
  }, 60_000)

  afterAll(async () => {
    await started?.close()
    await folder?.remove()
  })

  it('fails while pending (its table refused), and runs with its notes once approved, without a reload', async () => {
    const pending = manager.get('hello-grpc')
    expect(pending?.state).toBe('failed')
    expect(pending?.lastError).toMatchObject({ code: 'permission_denied' })
    expect(pending?.lastError?.message).toMatch(/db write/)
    await manager.setPolicy(approved('hello-grpc', helloGrpcGrants))
    // The approval itself loads the failed plugin again, under the grant it now has.
    const info = manager.get('hello-grpc')
    expect(info?.state).toBe('running')
    expect(info?.grant?.status).toBe('approved')
    expect(info?.history.slice(-2).map((t) => `${t.from}→${t.to}`)).toEqual([
      'failed→loading',
      'loading→running',
    ])
    expect(await manager.call('hello-grpc', 'addNote', { day: '2026-11-21', text: 'approved' })).toEqual({
      ok: true,
    })
    expect(await manager.call('hello-grpc', 'stats')).toEqual({ days: [{ day: '2026-11-21', notes: 1 }] })
  }, 60_000)
})
