import { describe, expect, it } from 'vitest'
import { definePlugin } from './define-plugin.js'

describe('definePlugin', () => {
  const register = { name: 'x', version: '1.0.0' } as never

  it('returns the definition as it is', () => {
    const definition = { register, functions: { echo: (args: unknown) => args } }
    expect(definePlugin(definition)).toBe(definition)
  })

  it('refuses a function that is not one', () => {
    expect(() => definePlugin({ register, functions: { echo: 42 as never } })).toThrow(
      'functions.echo is not a function',
    )
  })
})
