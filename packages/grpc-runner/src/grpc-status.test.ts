import { PluginError } from '@corral/types'
import { Metadata, status } from '@grpc/grpc-js'
import { describe, expect, it } from 'vitest'
import {
  codeFromStatus,
  errorFromStatus,
  errorMetadataKey,
  parseErrorJson,
  statusFromCode,
} from './grpc-status.js'

describe('the gRPC status table', () => {
  it('maps both ways for the codes that have a status of their own', () => {
    for (const code of [
      'canceled',
      'deadline_exceeded',
      'not_found',
      'permission_denied',
      'unavailable',
      'unimplemented',
    ] as const) {
      expect(codeFromStatus(statusFromCode(code))).toBe(code)
    }
    expect(codeFromStatus(status.UNAUTHENTICATED)).toBe('permission_denied')
    expect(codeFromStatus(99)).toBe('internal')
    expect(statusFromCode('hello:quota')).toBe(status.UNKNOWN)
  })

  it('prefers the PluginErrorData a Corral peer attached over the status', () => {
    const metadata = new Metadata()
    metadata.set(
      errorMetadataKey,
      JSON.stringify(new PluginError('rate_limited', 'slow down', { retryAfterMs: 10 }).toData()),
    )
    const error = errorFromStatus({ code: status.UNKNOWN, details: 'x', metadata }, 'p', 'call')
    expect(error).toMatchObject({
      code: 'rate_limited',
      rawMessage: 'slow down',
      retryAfterMs: 10,
      plugin: 'p',
    })
  })

  it('maps a bare status through the table', () => {
    const error = errorFromStatus(
      { code: status.DEADLINE_EXCEEDED, details: 'late', metadata: new Metadata() },
      'p',
      'init',
    )
    expect(error).toMatchObject({ code: 'deadline_exceeded', rawMessage: 'init: late' })
  })
})

describe('parseErrorJson', () => {
  const parse = (value: unknown) =>
    parseErrorJson(Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)), 'kv')

  it('keeps Corral codes and the plugin’s own', () => {
    expect(parse({ code: 'not_found', message: 'no key' })).toEqual({
      code: 'not_found',
      message: 'no key',
      plugin: 'kv',
    })
    expect(parse({ code: 'kv:full', message: 'full' }).code).toBe('kv:full')
  })

  it('does not let a plugin speak with another plugin’s codes, or without a code', () => {
    expect(parse({ code: 'other:bad', message: 'x' }).code).toBe('plugin_error')
    expect(parse({ message: 'no code' })).toEqual({ code: 'plugin_error', message: 'no code', plugin: 'kv' })
    expect(parse('not json').code).toBe('plugin_error')
  })
})
