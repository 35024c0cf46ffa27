import type { Manifest } from '@corral/types'
import { describe, expect, it } from 'vitest'
import { parseManifest } from './parse-manifest.js'
import { validateConfig } from './validate-config.js'

function manifestWith(schema: unknown, config: unknown = {}): Manifest {
  return parseManifest(
    JSON.stringify({
      name: 'mailer',
      version: '1.0.0',
      runtime: 'wasm',
      entry: { wasm: 'a.wasm' },
      config_schema: schema,
      config,
    }),
  )
}

const smtpSchema = {
  type: 'object',
  properties: {
    smtp: {
      type: 'object',
      properties: {
        host: { type: 'string', format: 'hostname' },
        port: { type: 'integer', minimum: 1, maximum: 65535, default: 25 },
      },
      required: ['host'],
      additionalProperties: false,
    },
    greeting: { type: 'string', default: 'Hello' },
  },
  required: ['smtp'],
  additionalProperties: false,
}

describe('validateConfig', () => {
  it('lays the host config over the manifest defaults and fills schema defaults', () => {
    const manifest = manifestWith(smtpSchema, { greeting: 'Hi' })
    expect(validateConfig(manifest, { smtp: { host: 'mail.example.com' } })).toEqual({
      greeting: 'Hi',
      smtp: { host: 'mail.example.com', port: 25 },
    })
  })

  it('lists every problem with its JSON pointer', () => {
    const manifest = manifestWith(smtpSchema)
    let error: unknown
    try {
      validateConfig(manifest, { smtp: { host: 'not a host!', port: 70000, tls: true }, extra: 1 })
    } catch (e) {
      error = e
    }
    expect(error).toMatchObject({ code: 'config_invalid', plugin: 'mailer' })
    const fields = (error as { fields: Array<{ field: string }> }).fields.map((f) => f.field).sort()
    expect(fields).toEqual(['/extra', '/smtp/host', '/smtp/port', '/smtp/tls'])
  })

  it('names a missing required field by its pointer', () => {
    expect(() => validateConfig(manifestWith(smtpSchema), {})).toThrow(
      expect.objectContaining({ fields: [{ field: '/smtp', message: expect.any(String) }] }),
    )
  })

  it('does not let validation defaults leak into the manifest', () => {
    const manifest = manifestWith(smtpSchema, { smtp: { host: 'a.example.com' } })
    validateConfig(manifest)
    expect(manifest.config).toEqual({ smtp: { host: 'a.example.com' } })
  })

  it('accepts draft-07 schemas by their $schema', () => {
    const manifest = manifestWith({
      $schema: 'http://json-schema.org/draft-07/schema#',
      type: 'object',
      properties: { n: { type: 'number' } },
    })
    expect(validateConfig(manifest, { n: 1 })).toEqual({ n: 1 })
    expect(() => validateConfig(manifest, { n: 'x' })).toThrow(
      expect.objectContaining({ code: 'config_invalid' }),
    )
  })

  it('reports a broken config_schema as a manifest problem', () => {
    expect(() => validateConfig(manifestWith({ type: 'no-such-type' }))).toThrow(
      expect.objectContaining({ code: 'manifest_invalid' }),
    )
  })

  it('passes config through when there is no schema', () => {
    expect(validateConfig(manifestWith(undefined, { a: 1 }), { b: 2 })).toEqual({ a: 1, b: 2 })
  })
})
