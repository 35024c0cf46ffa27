import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads'
import { describe, expect, it } from 'vitest'
import { isPluginError, isPluginErrorCode, PluginError } from './plugin-error.js'

describe('PluginError', () => {
  it('prefixes the message with the code and the plugin, and keeps the raw message', () => {
    const error = new PluginError('permission_denied', 'table users is not granted', { plugin: 'stats' })
    expect(error.message).toBe('[permission_denied] stats: table users is not granted')
    expect(error.rawMessage).toBe('table users is not granted')
    expect(error.name).toBe('PluginError')
    expect(error).toBeInstanceOf(Error)
  })

  it('survives a trip through a structured clone (a worker or process boundary) as data', () => {
    const original = new PluginError('rate_limited', 'too many calls', {
      plugin: 'stats',
      retryAfterMs: 250,
      cause: new PluginError('unavailable', 'redis is down'),
    })
    const { port1, port2 } = new MessageChannel()
    port1.postMessage(original.toData())
    const received = receiveMessageOnPort(port2)?.message
    port1.close()
    const rebuilt = PluginError.from(received)
    expect(rebuilt).toBeInstanceOf(PluginError)
    expect(rebuilt.code).toBe('rate_limited')
    expect(rebuilt.plugin).toBe('stats')
    expect(rebuilt.retryAfterMs).toBe(250)
    expect(rebuilt.cause).toBeInstanceOf(PluginError)
    expect((rebuilt.cause as PluginError).code).toBe('unavailable')
  })

  it('survives JSON, fields and all', () => {
    const original = new PluginError('manifest_invalid', '2 problems', {
      fields: [
        { field: 'name', message: 'required', line: 1, column: 1 },
        { field: 'version', message: 'not semver', line: 2, column: 10 },
      ],
    })
    const rebuilt = PluginError.from(JSON.parse(JSON.stringify(original)))
    expect(rebuilt.fields).toEqual(original.fields)
    expect(rebuilt.message).toBe(original.message)
  })

  it('wraps a foreign error with the given code and keeps it as the cause', () => {
    const cause = new TypeError('boom')
    const error = PluginError.from(cause, 'load_failed', 'hello')
    expect(error.code).toBe('load_failed')
    expect(error.plugin).toBe('hello')
    expect(error.cause).toBe(cause)
    expect(PluginError.from('just text').code).toBe('internal')
  })

  it('returns a PluginError unchanged', () => {
    const error = new PluginError('not_found', 'no such plugin')
    expect(PluginError.from(error, 'internal')).toBe(error)
  })
})

describe('isPluginError', () => {
  it('recognises an error from another realm by name and code', () => {
    const foreign = Object.assign(new Error('[canceled] stopped'), {
      name: 'PluginError',
      code: 'canceled',
      rawMessage: 'stopped',
    })
    expect(isPluginError(foreign)).toBe(true)
  })

  it('rejects look-alikes with an unknown code or a plain object', () => {
    const bad = Object.assign(new Error('x'), { name: 'PluginError', code: 'nonsense', rawMessage: 'x' })
    expect(isPluginError(bad)).toBe(false)
    expect(isPluginError({ name: 'PluginError', code: 'internal', rawMessage: 'x' })).toBe(false)
    expect(isPluginError(new Error('x'))).toBe(false)
  })
})

describe('isPluginErrorCode', () => {
  it.each([
    ['internal', true],
    ['hello-wasm:quota_exceeded', true],
    ['Hello:x', false],
    ['hello:', false],
    ['whatever', false],
    [42, false],
  ])('%s → %s', (code, expected) => {
    expect(isPluginErrorCode(code)).toBe(expected)
  })
})
