import { isPluginError } from '@corral/types'
import type { StandardSchemaV1 } from '@standard-schema/spec'
import { describe, expect, expectTypeOf, it } from 'vitest'
import * as z from 'zod'
import { type CallContext, definePlugin, withArgs } from './define-plugin.js'

const context = {} as CallContext

describe('definePlugin', () => {
  it('returns the definition as it is', () => {
    const definition = { functions: { echo: (args: unknown) => args } }
    expect(definePlugin(definition)).toBe(definition)
  })

  it('refuses a function that is not one', () => {
    expect(() => definePlugin({ functions: { echo: 42 as never } })).toThrow(
      'functions.echo is not a function',
    )
  })
})

describe('withArgs', () => {
  const greet = withArgs(
    z.object({ name: z.string().min(1), tags: z.array(z.string()).default([]) }),
    ({ name, tags }) => {
      expectTypeOf(tags).toEqualTypeOf<string[]>()
      return `${name}${tags.map((t) => ` #${t}`).join('')}`
    },
  )

  it('gives the handler its arguments parsed, defaults applied', () => {
    expect(greet({ name: 'Ada' }, context)).toBe('Ada')
    expect(greet({ name: 'Ada', tags: ['x'] }, context)).toBe('Ada #x')
  })

  it('refuses arguments that do not match with invalid_argument, each issue with its path', () => {
    let error: unknown
    try {
      greet({ name: '', tags: ['ok', 3] }, context)
    } catch (e) {
      error = e
    }
    expect(isPluginError(error) && error.code).toBe('invalid_argument')
    expect(isPluginError(error) && error.fields).toEqual([
      { field: 'name', message: expect.stringMatching(/>=1 characters/) },
      { field: 'tags[1]', message: expect.stringMatching(/expected string, received number/) },
    ])
    expect(isPluginError(error) && error.rawMessage).toMatch(/^invalid arguments: name: .*; tags\[1\]: /)
  })

  it('names the root when the arguments are not an object at all', () => {
    expect(() => greet(null, context)).toThrow(
      expect.objectContaining({
        code: 'invalid_argument',
        fields: [expect.objectContaining({ field: '(root)' })],
      }),
    )
  })

  it('takes any Standard Schema, path segments given as keys or as {key}', () => {
    const port: StandardSchemaV1<unknown, number> = {
      '~standard': {
        version: 1,
        vendor: 'test',
        validate: (value) =>
          typeof value === 'object' && value !== null && 'port' in value && typeof value.port === 'number'
            ? { value: value.port }
            : { issues: [{ message: 'a port is required', path: [{ key: 'server' }, 'ports', { key: 0 }] }] },
      },
    }
    const double = withArgs(port, (n) => {
      expectTypeOf(n).toEqualTypeOf<number>()
      return n * 2
    })
    expect(double({ port: 80 }, context)).toBe(160)
    expect(() => double({}, context)).toThrow(
      expect.objectContaining({
        code: 'invalid_argument',
        fields: [{ field: 'server.ports[0]', message: 'a port is required' }],
      }),
    )
  })

  it('waits for a schema that checks asynchronously, and rejects what it refuses', async () => {
    const known = new Set(['Ada'])
    const greetKnown = withArgs(
      z.object({ name: z.string().refine(async (name) => known.has(name), 'unknown name') }),
      ({ name }) => `Hello, ${name}`,
    )
    await expect(greetKnown({ name: 'Ada' }, context)).resolves.toBe('Hello, Ada')
    await expect(greetKnown({ name: 'Bob' }, context)).rejects.toMatchObject({
      code: 'invalid_argument',
      fields: [{ field: 'name', message: 'unknown name' }],
    })
  })
})
