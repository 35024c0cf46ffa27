import { createHash } from 'node:crypto'
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { PluginError } from '@corral/types'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { behaviourPluginWat, compileWat } from '../../testing/extism-plugins.js'
import type { ExtismManifest } from './extism-manifest.js'
import { fromExtismManifest } from './extism-manifest.js'

let dir: string
let outside: string
let wasm: Uint8Array
let hash: string

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'corral-extism-manifest-'))
  outside = await mkdtemp(path.join(tmpdir(), 'corral-extism-outside-'))
  wasm = await compileWat(behaviourPluginWat)
  hash = createHash('sha256').update(wasm).digest('hex')
  await writeFile(path.join(dir, 'plugin.wasm'), wasm)
  await writeFile(path.join(outside, 'plugin.wasm'), wasm)
  await symlink(path.join(outside, 'plugin.wasm'), path.join(dir, 'escape.wasm'))
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
  await rm(outside, { recursive: true, force: true })
})

async function rejection(input: unknown, name = 'count-vowels'): Promise<PluginError> {
  try {
    await fromExtismManifest(input as ExtismManifest, { name, dir })
  } catch (error) {
    return error as PluginError
  }
  throw new Error('expected the conversion to fail')
}

describe('fromExtismManifest', () => {
  it('turns every supported field into its Corral request', async () => {
    const { manifest, wasm: bytes } = await fromExtismManifest(
      {
        wasm: [{ path: 'plugin.wasm', hash }],
        config: { greeting: 'hi' },
        allowed_hosts: ['api.example.com', '*.Example.org'],
        allowed_paths: { './data/': '/data', 'ro:assets': '/assets/' },
        memory: { max_pages: 40 },
        timeout_ms: 250,
      },
      { name: 'count-vowels', version: '1.2.3', dir },
    )
    expect(bytes).toEqual(wasm)
    // max_pages bounds the kernel only: the guest's memory stays the administrator's memory_mb.
    expect(manifest.resources.memory_mb).toBeUndefined()
    expect(manifest).toMatchObject({
      name: 'count-vowels',
      version: '1.2.3',
      runtime: 'wasm',
      entry: { wasm: 'plugin.wasm' },
      wasm: { pool: { max_instances: 4, wait_timeout: 5000 }, extism: { max_pages: 40 } },
      config: { greeting: 'hi' },
      resources: {
        call_timeout: 250,
        permissions: [
          { type: 'http', access: [], scope: ['api.example.com', '*.example.org'] },
          { type: 'fs', access: ['read', 'write'], scope: ['data'] },
          { type: 'fs', access: ['read'], scope: ['assets'] },
        ],
      },
    })
  })

  it('accepts the module as bytes or base64 text, and a minimal manifest', async () => {
    const fromBytes = await fromExtismManifest({ wasm: [{ data: wasm, hash }] }, { name: 'inline', dir })
    expect(fromBytes.wasm).toEqual(wasm)
    expect(fromBytes.manifest.resources).toEqual({ permissions: [] })
    expect(fromBytes.manifest.version).toBe('0.0.0')
    expect(fromBytes.manifest.entry).toEqual({ wasm: 'inline.wasm' })
    const fromText = await fromExtismManifest(
      { wasm: [{ data: Buffer.from(wasm).toString('base64') }] },
      { name: 'inline', dir },
    )
    expect(fromText.wasm).toEqual(wasm)
  })

  it('refuses a module whose SHA-256 is not its hash, with load_failed', async () => {
    const wrong = createHash('sha256').update('something else').digest('hex')
    for (const source of [
      { path: 'plugin.wasm', hash: wrong },
      { data: wasm, hash: wrong },
    ]) {
      const error = await rejection({ wasm: [source] })
      expect(error.code).toBe('load_failed')
      expect(error.rawMessage).toContain(hash)
      expect(error.rawMessage).toContain(wrong)
    }
  })

  it('accepts the hash in upper case', async () => {
    await expect(
      fromExtismManifest({ wasm: [{ path: 'plugin.wasm', hash: hash.toUpperCase() }] }, { name: 'up', dir }),
    ).resolves.toBeDefined()
  })

  it('names every problem by its Extism field', async () => {
    const error = await rejection({
      wasm: [{ path: 'plugin.wasm', hash: 'abc' }],
      config: { n: 3 },
      allowed_hosts: ['api.example.com', 'bad host!'],
      memory: { max_pages: 0 },
      timeout_ms: -5,
      fuel: 10,
    })
    expect(error.code).toBe('manifest_invalid')
    expect(error.fields.map((f) => f.field).sort()).toEqual(
      ['config.n', 'fuel', 'memory.max_pages', 'timeout_ms', 'wasm[0].hash'].sort(),
    )
    const hosts = await rejection({
      wasm: [{ path: 'plugin.wasm' }],
      allowed_hosts: ['api.example.com', 'bad host!'],
    })
    expect(hosts.fields).toEqual([
      { field: 'allowed_hosts[1]', message: expect.stringContaining('host glob') },
    ])
  })

  it('refuses what Corral cannot run: several modules, a URL, both or neither of path and data', async () => {
    expect((await rejection({ wasm: [{ path: 'a.wasm' }, { path: 'b.wasm' }] })).fields[0]?.field).toBe(
      'wasm',
    )
    expect((await rejection({ wasm: [{ url: 'https://example.com/p.wasm' }] })).fields[0]?.field).toBe(
      'wasm[0].url',
    )
    expect((await rejection({ wasm: [{ path: 'plugin.wasm', data: wasm }] })).fields[0]?.field).toBe(
      'wasm[0]',
    )
    expect((await rejection({ wasm: [{}] })).fields[0]?.field).toBe('wasm[0]')
    expect((await rejection({ wasm: [] })).code).toBe('manifest_invalid')
  })

  it("refuses paths outside the plugin's folder: '..', absolute, or through a symbolic link", async () => {
    for (const source of ['../plugin.wasm', '/etc/passwd']) {
      const error = await rejection({ wasm: [{ path: source }] })
      expect(error.code).toBe('manifest_invalid')
      expect(error.fields[0]?.field).toBe('wasm[0].path')
    }
    expect(
      (await rejection({ wasm: [{ path: 'plugin.wasm' }], allowed_paths: { '/etc': '/etc' } })).fields[0],
    ).toEqual({
      field: 'allowed_paths./etc',
      message: expect.stringContaining('relative'),
    })
    expect((await rejection({ wasm: [{ path: 'escape.wasm' }] })).fields[0]?.field).toBe('wasm[0].path')
  })

  it('refuses a data module or an allowed path that leads out of the folder through a link, on every conversion', async () => {
    // escape.wasm links outside: the bytes of a data module named escape would be written there.
    expect((await rejection({ wasm: [{ data: wasm, name: 'escape' }] })).fields).toEqual([
      { field: 'wasm[0].name', message: expect.stringContaining("resolves outside the plugin's folder") },
    ])
    // A link planted after one conversion is found by the next.
    const first = await fromExtismManifest({ wasm: [{ data: wasm, name: 'later' }] }, { name: 'later', dir })
    expect(first.manifest.entry).toEqual({ wasm: 'later.wasm' })
    await symlink(path.join(outside, 'plugin.wasm'), path.join(dir, 'later.wasm'))
    expect((await rejection({ wasm: [{ data: wasm, name: 'later' }] })).fields[0]?.field).toBe('wasm[0].name')
    // A data module's allowed paths are resolved too.
    await symlink(outside, path.join(dir, 'linked'))
    expect(
      (await rejection({ wasm: [{ data: wasm }], allowed_paths: { linked: '/linked' } })).fields,
    ).toEqual([
      {
        field: 'allowed_paths.linked',
        message: expect.stringContaining("resolves outside the plugin's folder"),
      },
    ])
  })

  it('refuses a guest path other than where Corral shows the directory', async () => {
    const error = await rejection({ wasm: [{ path: 'plugin.wasm' }], allowed_paths: { data: '/mnt/data' } })
    expect(error.fields).toEqual([
      { field: 'allowed_paths.data', message: 'must be /data: Corral shows the directory there' },
    ])
  })

  it('refuses a plugin name Corral does not accept', async () => {
    expect((await rejection({ wasm: [{ path: 'plugin.wasm' }] }, 'Not A Name')).fields[0]?.field).toBe('name')
  })

  it('fails with load_failed when the module file is missing', async () => {
    expect((await rejection({ wasm: [{ path: 'missing.wasm' }] })).code).toBe('load_failed')
  })
})
