import { closeSync, openSync, readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { resolvePreopens } from '../host/preopens.js'
import type { SandboxDir } from './fs-sandbox.js'
import { errno, pathAt, SandboxRefusal, walkBeneath } from './fs-sandbox.js'

let root: string
let plugin: string
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'corral-sandbox-'))
  plugin = path.join(root, 'plugin')
  await mkdir(path.join(plugin, 'data', 'nested'), { recursive: true })
  await mkdir(path.join(root, 'elsewhere'))
  await writeFile(path.join(root, 'elsewhere', 'secret.txt'), 'secret')
  await writeFile(path.join(plugin, 'data', 'nested', 'x.txt'), 'x')
  await symlink(path.join(root, 'elsewhere'), path.join(plugin, 'linked'))
  await symlink(path.join(root, 'elsewhere'), path.join(plugin, 'data', 'out-abs'))
  await symlink('../../elsewhere', path.join(plugin, 'data', 'out-rel'))
  await symlink('nested', path.join(plugin, 'data', 'in-rel'))
  await symlink(path.join(plugin, 'data', 'nested', 'x.txt'), path.join(plugin, 'data', 'in-abs'))
  await symlink('loop', path.join(plugin, 'data', 'loop'))
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

describe('walkBeneath', () => {
  let data: SandboxDir
  beforeAll(() => {
    const [preopen] = resolvePreopens(plugin, [{ type: 'fs', access: ['read'], scope: ['data'] }])
    if (preopen === undefined) throw new Error('no preopen')
    data = { fd: openSync(preopen.hostPath, 'r'), preopen, components: [] }
  })
  afterAll(() => closeSync(data.fd))

  /** Reads the file the walk leads to, through its parent's descriptor. */
  const read = (guestPath: string) =>
    walkBeneath(data, guestPath, true, (parent, name) => readFileSync(pathAt(parent, name), 'utf8'))
  const refusal = (fn: () => unknown) => {
    try {
      fn()
    } catch (error) {
      expect(error).toBeInstanceOf(SandboxRefusal)
      return (error as SandboxRefusal).errno
    }
    throw new Error('expected a refusal')
  }
  /** Descriptors of this process inside the plugin's folder beside the preopen: a walk closes its own. */
  const held = () =>
    readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`).startsWith(`${data.preopen.hostPath}/`)
      } catch {
        return false
      }
    }).length

  it('reaches files inside, also through symlinks that stay inside, and closes what it opened', () => {
    expect(read('nested/./x.txt')).toBe('x')
    expect(read('nested/../nested/x.txt')).toBe('x')
    expect(read('in-rel/x.txt')).toBe('x')
    expect(read('in-abs')).toBe('x')
    expect(held()).toBe(0)
  })

  it('gives the names from the preopen down to the parent', () => {
    expect(walkBeneath(data, 'nested/x.txt', true, (_parent, _name, components) => components)).toEqual([
      'nested',
    ])
  })

  it('refuses absolute paths, .. past the root, NUL bytes, symlinks out and symlink loops', () => {
    expect(refusal(() => read('/etc/passwd'))).toBe(errno.notcapable)
    expect(refusal(() => read('nested/../../x'))).toBe(errno.notcapable)
    expect(refusal(() => read('a\0b'))).toBe(errno.inval)
    expect(refusal(() => read('out-abs/secret.txt'))).toBe(errno.notcapable)
    expect(refusal(() => read('out-rel/secret.txt'))).toBe(errno.notcapable)
    expect(refusal(() => read('loop'))).toBe(errno.loop)
    expect(held()).toBe(0)
  })

  it('leaves a last symlink alone unless told to follow it', () => {
    expect(walkBeneath(data, 'out-abs', false, (parent, name) => `${parent === data.fd}:${name}`)).toBe(
      'true:out-abs',
    )
  })

  it('refuses a missing directory on the way with ENOENT', () => {
    expect(() => read('no/such/dir/file')).toThrow(expect.objectContaining({ code: 'ENOENT' }))
    expect(held()).toBe(0)
  })
})
