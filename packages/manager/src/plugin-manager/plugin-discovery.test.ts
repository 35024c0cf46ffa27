import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parseManifest } from '@corral/manifest'
import { type Logger, PluginError } from '@corral/types'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { discoverPlugins, pluginNameKey } from './plugin-discovery.js'

/** Bare `.wasm` files are described by the manager's WASM runner; these tests have none. */
const noWasm = () => Promise.reject(new PluginError('internal', 'no bare .wasm expected here'))

/** A logger that keeps what it is given. */
function memoryLogger() {
  const entries: Array<{ level: string; message: string; fields?: Record<string, unknown> }> = []
  const logger: Logger = { log: (level, message, fields) => entries.push({ level, message, fields }) }
  return { logger, entries }
}
const { logger } = memoryLogger()

describe('discoverPlugins', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'corral-discover-'))
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  async function plugin(name: string, yaml: string) {
    await mkdir(path.join(dir, name))
    await writeFile(path.join(dir, name, 'plugin.yaml'), yaml)
  }

  it('reports each bad plugin with its error and keeps the good ones', async () => {
    await plugin(
      'good',
      'name: good\nversion: 1.0.0\nruntime: wasm\nentry: {wasm: a.wasm}\nresources:\n  permissions: [{type: cache, scope: ["*"]}]\n',
    )
    await plugin('broken', 'name: broken\nversion: nope\n')
    await plugin(
      'future',
      'name: future\nversion: 1.0.0\nruntime: wasm\nentry: {wasm: a.wasm}\nmin_host_version: ">=9"\n',
    )
    const found = await discoverPlugins({
      pluginsDir: dir,
      hostVersion: '0.1.0',
      describeWasm: noWasm,
      logger,
    })
    expect(found.map((p) => [path.basename(p.path), p.ok ? 'ok' : p.error.code])).toEqual([
      ['broken', 'manifest_invalid'],
      ['future', 'incompatible'],
      ['good', 'ok'],
    ])
    const good = found[2]
    expect(good?.ok && good.manifest.resources.permissions).toEqual([
      { type: 'cache', access: ['read', 'write'], scope: ['*'] },
    ])
  })

  it('refuses every folder of a name two folders declare, reporting each with the other', async () => {
    const manifest = (scope: string) =>
      `name: twin\nversion: 1.0.0\nruntime: wasm\nentry: {wasm: a.wasm}\nresources:\n  permissions: [{type: cache, scope: ["${scope}"]}]\n`
    await plugin('twin', manifest('twin:*'))
    await plugin('impostor', manifest('*'))
    await plugin('other', 'name: other\nversion: 1.0.0\nruntime: wasm\nentry: {wasm: a.wasm}\n')
    const found = await discoverPlugins({
      pluginsDir: dir,
      hostVersion: '0.1.0',
      describeWasm: noWasm,
      logger,
    })
    expect(found.map((p) => [path.basename(p.path), p.ok ? 'ok' : p.error.code])).toEqual([
      ['impostor', 'already_exists'],
      ['other', 'ok'],
      ['twin', 'already_exists'],
    ])
    expect(found[0]?.ok === false && found[0].error.message).toMatch(/also declared by twin/)
    expect(found[2]?.ok === false && found[2].error.message).toMatch(/also declared by impostor/)
  })

  it('skips hidden folders and node_modules, and a folder with no manifest with a warning', async () => {
    const good = 'name: good\nversion: 1.0.0\nruntime: wasm\nentry: {wasm: a.wasm}\n'
    await plugin('good', good)
    await plugin('.hidden', good.replace('good', 'hidden'))
    await mkdir(path.join(dir, '.git/objects'), { recursive: true })
    await mkdir(path.join(dir, 'node_modules/left-pad'), { recursive: true })
    await mkdir(path.join(dir, 'notes'))
    await writeFile(path.join(dir, 'notes/todo.txt'), 'write plugins\n')
    const logs = memoryLogger()
    const found = await discoverPlugins({
      pluginsDir: dir,
      hostVersion: '0.1.0',
      describeWasm: noWasm,
      logger: logs.logger,
    })
    expect(found.map((p) => [path.basename(p.path), p.ok])).toEqual([['good', true]])
    expect(logs.entries).toEqual([
      {
        level: 'warn',
        message: expect.stringMatching(/has no plugin\.yaml.*skipped/),
        fields: { folder: path.join(dir, 'notes') },
      },
    ])
  })

  it('lists a broken folder by its path when a good folder declares the folder’s name', async () => {
    await plugin('hello-x', 'name: hello-x\nversion: nope\n')
    await plugin('hx-new', 'name: hello-x\nversion: 1.0.0\nruntime: wasm\nentry: {wasm: a.wasm}\n')
    const found = await discoverPlugins({
      pluginsDir: dir,
      hostVersion: '0.1.0',
      describeWasm: noWasm,
      logger,
    })
    expect(found.map((p) => (p.ok ? [p.manifest.name, 'ok'] : [p.name, p.error.code]))).toEqual([
      [path.join(dir, 'hello-x'), 'manifest_invalid'],
      ['hello-x', 'ok'],
    ])
  })

  it('takes bare .wasm files, described by their registration, and sources named one by one', async () => {
    await writeFile(path.join(dir, 'solo.wasm'), '')
    await writeFile(path.join(dir, 'opaque.wasm'), '')
    const elsewhere = await mkdtemp(path.join(tmpdir(), 'corral-source-'))
    try {
      await writeFile(
        path.join(elsewhere, 'plugin.yaml'),
        'name: outside\nversion: 1.0.0\nruntime: wasm\nentry: {wasm: a.wasm}\n',
      )
      await writeFile(path.join(elsewhere, 'a.wasm'), '')
      const describeWasm = async (file: string) => {
        if (path.basename(file) === 'opaque.wasm') {
          throw new PluginError('load_failed', 'opaque.wasm exports no corral_register')
        }
        return parseManifest('name: solo\nversion: 2.0.0\nruntime: wasm\nentry: {wasm: solo.wasm}\n')
      }
      const found = await discoverPlugins({
        pluginsDir: dir,
        sources: [{ path: elsewhere }, { path: path.join(dir, 'solo.wasm') }],
        hostVersion: '0.1.0',
        describeWasm,
        logger,
      })
      expect(found.map((p) => (p.ok ? [p.manifest.name, p.dir] : [p.name, p.error.code]))).toEqual([
        ['opaque', 'load_failed'],
        ['solo', dir],
        ['outside', elsewhere],
      ])
    } finally {
      await rm(elsewhere, { recursive: true, force: true })
    }
  })

  it('loads a manifest in GoatKit’s form, logging each note with its field and line', async () => {
    await plugin(
      'goatkit',
      'name: goatkit\nversion: 1.0.0\nbinary: build/goatkit\nresources:\n  permissions:\n    - {type: cache, access: readwrite, scope: ["*"]}\n',
    )
    const logs = memoryLogger()
    const [found] = await discoverPlugins({
      pluginsDir: dir,
      hostVersion: '0.1.0',
      describeWasm: noWasm,
      logger: logs.logger,
    })
    expect(found).toMatchObject({
      ok: true,
      manifest: { runtime: 'grpc', entry: { binary: 'build/goatkit' } },
    })
    expect(logs.entries.map((e) => [e.level, e.message.split(':')[0], e.fields?.line])).toEqual([
      ['warn', 'binary', 3],
      ['warn', 'resources.permissions[0].access', 6],
    ])
    expect(logs.entries[0]?.fields).toMatchObject({ plugin: 'goatkit' })
  })

  it('keys names by their folded form, so names differing only in case or Unicode form collide', () => {
    expect(pluginNameKey('Hello-Wasm')).toBe(pluginNameKey('hello-wasm'))
    // U+FF48 FULLWIDTH LATIN SMALL LETTER H folds (NFKC) to "h".
    expect(pluginNameKey('\uff48ello')).toBe(pluginNameKey('hello'))
    expect(pluginNameKey('hello')).not.toBe(pluginNameKey('hallo'))
  })
})
