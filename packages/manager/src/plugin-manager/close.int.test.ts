import { readFileSync } from 'node:fs'
import { eventually, processExists, processesWithCommandLine } from '@corral/grpc-runner/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  approved,
  copyExample,
  failureCode,
  startManager,
  tempPluginsDir,
  writeSdkFixturePlugin,
} from '../testing/plugin-folders.js'
import type { PluginManager } from './manager-api.js'

/**
 * close() with real plugins: it stops them in reverse load order, lets a call in flight finish,
 * refuses every later call with `unavailable`, and leaves no plugin process or worker thread behind.
 */

/** Threads of this process (worker threads among them), from /proc. */
function threadCount(): number {
  return Number(/^Threads:\s+(\d+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1])
}

describe('closing a manager with WASM and gRPC plugins running', () => {
  let folder: Awaited<ReturnType<typeof tempPluginsDir>>
  let later: Awaited<ReturnType<typeof tempPluginsDir>>
  let started: Awaited<ReturnType<typeof startManager>>
  let manager: PluginManager
  let threadsBefore: number
  let fixturePid: number

  beforeAll(async () => {
    folder = await tempPluginsDir()
    later = await tempPluginsDir()
    await writeSdkFixturePlugin(folder.dir, 'a-fixture')
    await copyExample('hello-grpc', folder.dir)
    await copyExample('hello-wasm', folder.dir)
    await copyExample('c-wasm', later.dir)
    threadsBefore = threadCount()
    started = await startManager({
      pluginsDir: folder.dir,
      policies: [
        approved('hello-grpc', [
          { type: 'db', access: ['read', 'write'], scope: ['hello_grpc_*'] },
          { type: 'cache', access: ['read', 'write'], scope: ['*'] },
        ]),
      ],
    })
    manager = started.manager
  }, 60_000)

  afterAll(async () => {
    await started?.close()
    await folder?.remove()
    await later?.remove()
  })

  it('stops plugins in reverse load order, finishing a call in flight, then refuses calls', async () => {
    // Discovery loads the folder's plugins in name order; c-wasm, loaded by hand, comes last.
    await manager.load(`${later.dir}/c-wasm`)
    const names = ['a-fixture', 'hello-grpc', 'hello-wasm', 'c-wasm']
    for (const name of names) expect(manager.get(name)?.state).toBe('running')
    fixturePid = await manager.call<unknown, number>('a-fixture', 'pid')
    expect(processesWithCommandLine(folder.dir).length).toBe(2)
    expect(threadCount()).toBeGreaterThan(threadsBefore)

    const inFlight = manager.call('hello-grpc', 'slow', { ms: 500 })
    await started.close()
    expect(await inFlight).toEqual({ done: true })

    const stops = started.events.flatMap((e) =>
      e.type === 'plugin.state' && (e.to === 'stopping' || e.to === 'stopped') ? [`${e.plugin} ${e.to}`] : [],
    )
    expect(stops).toEqual([...names].reverse().flatMap((name) => [`${name} stopping`, `${name} stopped`]))
    for (const name of names) expect(manager.get(name)?.state).toBe('stopped')

    for (const name of names) expect(await failureCode(manager.call(name, 'echo', {}))).toBe('unavailable')
    expect(await failureCode(manager.call('nobody', 'echo', {}))).toBe('unavailable')
    expect(await failureCode(manager.load(`${later.dir}/c-wasm`))).toBe('unavailable')
    expect(await failureCode(manager.start())).toBe('unavailable')
  }, 60_000)

  it('leaves no plugin process and no worker thread behind', async () => {
    expect(processExists(fixturePid)).toBe(false)
    expect(processesWithCommandLine(folder.dir)).toEqual([])
    await eventually(() => threadCount() <= threadsBefore, 20_000, 'the worker threads to end')
  })
})
