import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { discoverPlugins } from './discover-plugins.js'

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
    const found = await discoverPlugins(dir, '0.1.0')
    expect(found.map((p) => [path.basename(p.dir), p.ok ? 'ok' : p.error.code])).toEqual([
      ['broken', 'manifest_invalid'],
      ['future', 'incompatible'],
      ['good', 'ok'],
    ])
    const good = found[2]
    expect(good?.ok && good.manifest.resources.permissions).toEqual([
      { type: 'cache', access: ['read', 'write'], scope: ['*'] },
    ])
  })
})
