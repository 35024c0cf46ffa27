import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { PluginError } from '@corral/types'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ModuleFiles, moduleBytes } from './module-files.js'

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'corral-module-files-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error('expected a failure')
    },
    (error: unknown) => error as PluginError,
  )

describe('ModuleFiles', () => {
  it('reads a module with its digest, and keeps it while the file stays the same', async () => {
    await writeFile(path.join(dir, 'a.wasm'), 'first')
    // A clock a minute ahead: the file counts as settled since it was written.
    const files = new ModuleFiles(8, () => Date.now() + 60_000)
    const first = await files.read(dir, 'a.wasm', 'p')
    expect(first).toEqual(moduleBytes(new TextEncoder().encode('first')))
    expect(await files.read(dir, 'a.wasm', 'p')).toBe(first)
    // Same size, new content, written as build tools do (a new file renamed over the old one): in
    // the same clock tick as the first write, only the inode tells them apart.
    await writeFile(path.join(dir, 'a.wasm.new'), 'other')
    await rename(path.join(dir, 'a.wasm.new'), path.join(dir, 'a.wasm'))
    const second = await files.read(dir, 'a.wasm', 'p')
    expect(new TextDecoder().decode(second.bytes)).toBe('other')
    expect(second.digest).not.toBe(first.digest)
  })

  it('resolves a kept module again once its path leads to another file, and refuses one outside the folder', async () => {
    const plugin = path.join(dir, 'plugin')
    await mkdir(plugin)
    await writeFile(path.join(plugin, 'a.wasm'), 'first')
    const files = new ModuleFiles(8, () => Date.now() + 60_000)
    const kept = await files.read(plugin, 'a.wasm', 'p')
    expect(await files.read(plugin, 'a.wasm', 'p')).toBe(kept)
    // The same bytes outside the folder, swapped in under the kept path by a symbolic link.
    await writeFile(path.join(dir, 'outside.wasm'), 'first')
    await symlink(path.join(dir, 'outside.wasm'), path.join(plugin, 'a.wasm.new'))
    await rename(path.join(plugin, 'a.wasm.new'), path.join(plugin, 'a.wasm'))
    const escaped = await failure(files.read(plugin, 'a.wasm', 'p'))
    expect([escaped.code, escaped.rawMessage]).toEqual([
      'load_failed',
      "the module a.wasm is outside the plugin's folder",
    ])
    await rm(path.join(plugin, 'a.wasm'))
    const missing = await failure(files.read(plugin, 'a.wasm', 'p'))
    expect(missing.rawMessage).toBe('no module at a.wasm (was the plugin built?)')
  })

  it('reads a file changed moments ago again each time: a write in the same clock tick leaves no trace', async () => {
    await writeFile(path.join(dir, 'a.wasm'), 'fresh')
    const files = new ModuleFiles()
    const first = await files.read(dir, 'a.wasm', 'p')
    const again = await files.read(dir, 'a.wasm', 'p')
    expect(again).not.toBe(first)
    expect(again).toEqual(first)
  })

  it('fails with load_failed for a missing module and for one outside the folder', async () => {
    const files = new ModuleFiles()
    const missing = await failure(files.read(dir, 'none.wasm', 'p'))
    expect([missing.code, missing.rawMessage]).toEqual([
      'load_failed',
      'no module at none.wasm (was the plugin built?)',
    ])
    const outside = path.join(dir, 'outside.wasm')
    await writeFile(outside, 'x')
    await mkdir(path.join(dir, 'plugin'))
    await symlink(outside, path.join(dir, 'plugin', 'link.wasm'))
    const escaped = await failure(files.read(path.join(dir, 'plugin'), 'link.wasm', 'p'))
    expect([escaped.code, escaped.rawMessage]).toEqual([
      'load_failed',
      "the module link.wasm is outside the plugin's folder",
    ])
    await mkdir(path.join(dir, 'plugin', 'folder.wasm'))
    const folder = await failure(files.read(path.join(dir, 'plugin'), 'folder.wasm', 'p'))
    expect([folder.code, folder.rawMessage]).toEqual(['load_failed', 'the module folder.wasm is not a file'])
  })

  it('never reads a file outside the folder while a folder on the path is swapped for a link out of it', async () => {
    const plugin = path.join(dir, 'plugin')
    await mkdir(path.join(plugin, 'build'), { recursive: true })
    await mkdir(path.join(dir, 'outside'))
    await writeFile(path.join(plugin, 'build', 'x.wasm'), 'inside')
    await writeFile(path.join(dir, 'outside', 'x.wasm'), 'outside')
    await symlink(path.join(dir, 'outside'), path.join(plugin, 'build.link'))
    // Flips build between the folder and the link, as fast as it can, until killed.
    const swap = `const { renameSync } = require('node:fs')
      const [live, real, link] = ['build', 'build.real', 'build.link'].map((name) => ${JSON.stringify(plugin)} + '/' + name)
      for (;;) { renameSync(live, real); renameSync(link, live); renameSync(live, link); renameSync(real, live) }`
    const swapper = spawn(process.execPath, ['-e', swap], { stdio: 'ignore' })
    // Every file is old enough to be kept from its first read.
    const files = new ModuleFiles(8, () => Date.now() + 60_000)
    const read: Record<string, number> = {}
    try {
      for (const end = Date.now() + 2_000; Date.now() < end; ) {
        const got = await files.read(plugin, 'build/x.wasm', 'p').then(
          (module) => Buffer.from(module.bytes).toString(),
          (error: PluginError) => error.code,
        )
        read[got] = (read[got] ?? 0) + 1
      }
    } finally {
      swapper.kill('SIGKILL')
      await once(swapper, 'exit')
    }
    expect(read.inside).toBeGreaterThan(0)
    expect(read.outside).toBeUndefined()
    // With the folder back in place, its module is read: nothing read during the swaps was kept
    // under the module's identity.
    if (existsSync(path.join(plugin, 'build.real'))) {
      if (existsSync(path.join(plugin, 'build')))
        await rename(path.join(plugin, 'build'), path.join(plugin, 'build.link'))
      await rename(path.join(plugin, 'build.real'), path.join(plugin, 'build'))
    }
    expect(Buffer.from((await files.read(plugin, 'build/x.wasm', 'p')).bytes).toString()).toBe('inside')
  })
})
