import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { errno, resolveInside, resolvePreopens, SandboxRefusal } from './fs-sandbox.js'

let root: string
let plugin: string
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'corral-sandbox-'))
  plugin = path.join(root, 'plugin')
  await mkdir(path.join(plugin, 'data', 'nested'), { recursive: true })
  await mkdir(path.join(root, 'elsewhere'))
  await symlink(path.join(root, 'elsewhere'), path.join(plugin, 'linked'))
})
afterAll(() => rm(root, { recursive: true, force: true }))

describe('resolvePreopens', () => {
  it('maps fs grants to directories inside the plugin folder, merging read and write', () => {
    const preopens = resolvePreopens(plugin, [
      { type: 'fs', access: ['read'], scope: ['data'] },
      { type: 'fs', access: ['write'], scope: ['data'] },
      { type: 'cache', access: ['read'], scope: ['*'] },
    ])
    expect(preopens).toHaveLength(1)
    expect(preopens[0]).toMatchObject({ guestPath: '/data', writable: true })
  })

  it.each([['..'], ['../elsewhere'], ['linked'], ['missing']])(
    'refuses the grant %s with load_failed',
    (scope) => {
      expect(() => resolvePreopens(plugin, [{ type: 'fs', access: ['read'], scope: [scope] }])).toThrow(
        expect.objectContaining({ code: 'load_failed' }),
      )
    },
  )
})

describe('resolveInside', () => {
  const refusal = (fn: () => unknown) => {
    try {
      fn()
    } catch (error) {
      expect(error).toBeInstanceOf(SandboxRefusal)
      return (error as SandboxRefusal).errno
    }
    throw new Error('expected a refusal')
  }

  it('resolves paths inside, existing or not', () => {
    const data = path.join(plugin, 'data')
    expect(resolveInside(data, data, 'nested/./x.json')).toBe(path.join(data, 'nested', 'x.json'))
    expect(resolveInside(data, path.join(data, 'nested'), '../y.json')).toBe(path.join(data, 'y.json'))
  })

  it('refuses absolute paths, .. past the root, NUL bytes and missing parents', () => {
    const data = path.join(plugin, 'data')
    expect(refusal(() => resolveInside(data, data, '/etc/passwd'))).toBe(errno.notcapable)
    expect(refusal(() => resolveInside(data, data, 'nested/../../x'))).toBe(errno.notcapable)
    expect(refusal(() => resolveInside(data, data, 'a\0b'))).toBe(errno.inval)
    expect(refusal(() => resolveInside(data, data, 'no/such/dir/file'))).toBe(errno.noent)
  })
})
