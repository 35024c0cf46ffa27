import { isPluginError, type PluginError } from '@corral/types'
import { describe, expect, it } from 'vitest'
import { parseManifest, parseManifestWithNotes } from './parse-manifest.js'

function failure(text: string): PluginError {
  try {
    parseManifest(text)
  } catch (error) {
    if (isPluginError(error)) return error
    throw error
  }
  throw new Error('parsed')
}

const corralGrpc = `name: kv
version: 1.0.0
runtime: grpc
entry:
  binary: build/kv
resources:
  call_timeout: 30s
  permissions:
    - type: db
      access: [read]
      scope: ["kv_*"]
    - type: cache
      access: [read, write]
      scope: ["kv:*"]
`

const goatKitGrpc = `name: kv
version: 1.0.0
binary: build/kv
resources:
  call_timeout: 30s
  permissions:
    - type: db
      access: read
      scope: ["kv_*"]
    - type: cache
      access: readwrite
      scope: ["kv:*"]
`

describe('parseManifestWithNotes with GoatKit’s form', () => {
  it('reads a top-level binary and access strings as the Corral form would be read', () => {
    const { manifest, notes } = parseManifestWithNotes(goatKitGrpc)
    expect(manifest).toEqual(parseManifest(corralGrpc))
    expect(parseManifestWithNotes(corralGrpc).notes).toEqual([])
    expect(notes.map((n) => [n.field, n.line])).toEqual([
      ['binary', 3],
      ['resources.permissions[0].access', 8],
      ['resources.permissions[1].access', 11],
    ])
    expect(notes[0]?.message).toContain('runtime: grpc and entry: { binary: build/kv }')
    expect(notes[2]?.message).toContain('access: [read, write]')
  })

  it('keeps a GoatKit runtime that agrees with the entry', () => {
    const { manifest, notes } = parseManifestWithNotes(`runtime: grpc\n${goatKitGrpc}`)
    expect(manifest).toEqual(parseManifest(corralGrpc))
    expect(notes[0]).toMatchObject({ field: 'binary', line: 4 })
  })

  it('reads a top-level wasm module path, and leaves Corral’s wasm options alone', () => {
    const goatKit = parseManifestWithNotes('name: counter\nversion: 0.1.0\nwasm: counter.wasm\n')
    const corral = parseManifest(
      'name: counter\nversion: 0.1.0\nruntime: wasm\nentry:\n  wasm: counter.wasm\n',
    )
    expect(goatKit.manifest).toEqual(corral)
    expect(goatKit.notes).toMatchObject([{ field: 'wasm', line: 3 }])
    const options = parseManifestWithNotes(
      'name: counter\nversion: 0.1.0\nruntime: wasm\nentry:\n  wasm: counter.wasm\nwasm:\n  pool:\n    max_instances: 2\n',
    )
    expect(options.notes).toEqual([])
    expect(options.manifest.wasm?.pool.max_instances).toBe(2)
  })

  it('refuses a binary beside an entry, with the path and line', () => {
    const error = failure(`${corralGrpc}binary: build/other\n`)
    expect(error.code).toBe('manifest_invalid')
    expect(error.fields).toEqual([
      expect.objectContaining({ field: 'binary', line: 15, message: expect.stringContaining('not both') }),
    ])
    expect(error.message).toContain('15:1 binary:')
  })

  it('refuses both entries, and an entry contradicting runtime', () => {
    expect(failure('name: kv\nversion: 1.0.0\nbinary: kv\nwasm: kv.wasm\n').fields).toMatchObject([
      { field: 'wasm', line: 4 },
    ])
    expect(failure('name: kv\nversion: 1.0.0\nruntime: wasm\nbinary: kv\n').fields).toMatchObject([
      { field: 'binary', line: 4, message: 'names a grpc entry, but runtime is wasm' },
    ])
  })

  it('refuses an access string GoatKit does not have either', () => {
    const error = failure(goatKitGrpc.replace('access: read\n', 'access: admin\n'))
    expect(error.fields).toMatchObject([{ field: 'resources.permissions[0].access', line: 8 }])
  })
})
