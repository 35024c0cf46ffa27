import type { IncomingHttpHeaders } from 'node:http2'
import { PluginError } from '@corral/types'
import { Metadata, status } from '@grpc/grpc-js'
import { describe, expect, it } from 'vitest'
import {
  encodeErrorJson,
  errorFromStatus,
  errorMetadataKey,
  errorMetadataMaxBytes,
  errorStatus,
  parseErrorJson,
} from './error-metadata.js'

/** What the host reads of an error the plugin side sent through grpc-js metadata. */
function roundTrip(error: PluginError): PluginError {
  const sent = errorStatus(error)
  // Through the wire form of metadata: what grpc-js validates and sends.
  const received = Metadata.fromHttp2Headers(sent.metadata.toHttp2Headers() as IncomingHttpHeaders)
  return errorFromStatus({ code: sent.code, details: sent.details, metadata: received }, 'kv', 'call')
}

describe('errorStatus and errorFromStatus', () => {
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

  it('carries the whole error, with the status of its code', () => {
    const error = new PluginError('config_invalid', 'bad config', {
      fields: [{ field: '/port', message: 'must be a number' }],
    })
    expect(errorStatus(error).code).toBe(status.UNKNOWN)
    expect(errorStatus(new PluginError('not_found', 'x')).code).toBe(status.NOT_FOUND)
    expect(roundTrip(error).toData()).toEqual({ ...error.toData(), plugin: 'kv' })
    expect(roundTrip(new PluginError('kv:quota', 'over')).code).toBe('kv:quota')
  })

  it('carries a message outside ASCII (metadata values are ASCII)', () => {
    const error = new PluginError('invalid_argument', 'can’t read “naïve” 🐄')
    expect(roundTrip(error).rawMessage).toBe('can’t read “naïve” 🐄')
  })

  it('cuts an error too large for the trailers to its code and the start of its message', () => {
    for (const message of ['x'.repeat(100_000), '🐄'.repeat(50_000), '"'.repeat(100_000)]) {
      const error = new PluginError('resource_exhausted', message, {
        fields: [{ field: 'f', message: 'y'.repeat(100_000) }],
      })
      const sent = errorStatus(error)
      const json = sent.metadata.get(errorMetadataKey)[0] as string
      expect(json.length).toBeLessThanOrEqual(errorMetadataMaxBytes)
      expect(Buffer.byteLength(sent.details)).toBeLessThanOrEqual(errorMetadataMaxBytes)
      const received = roundTrip(error)
      expect(received.code).toBe('resource_exhausted')
      expect(received.fields).toEqual([])
      expect(received.rawMessage.endsWith('…')).toBe(true)
      expect(message.startsWith(received.rawMessage.slice(0, -1))).toBe(true)
      expect(received.rawMessage.length).toBeGreaterThan(100)
    }
  })

  it('sends a code that is no PluginErrorCode, too large to send, as plugin_error', () => {
    const error = new PluginError('x'.repeat(20_000) as 'internal', 'm')
    const json = errorStatus(error).metadata.get(errorMetadataKey)[0] as string
    expect(json.length).toBeLessThanOrEqual(errorMetadataMaxBytes)
    expect(roundTrip(error).code).toBe('plugin_error')
  })

  it('falls back to the status for metadata above the limit, and says when it is not JSON', () => {
    const oversized = new Metadata()
    oversized.set(
      errorMetadataKey,
      JSON.stringify({ code: 'not_found', message: 'x'.repeat(errorMetadataMaxBytes) }),
    )
    expect(
      errorFromStatus({ code: status.PERMISSION_DENIED, details: 'no', metadata: oversized }, 'p', 'call'),
    ).toMatchObject({ code: 'permission_denied', rawMessage: 'call: no', plugin: 'p' })
    const garbled = new Metadata()
    garbled.set(errorMetadataKey, '{not json')
    expect(
      errorFromStatus({ code: status.NOT_FOUND, details: 'x', metadata: garbled }, 'p', 'call'),
    ).toMatchObject({ code: 'plugin_error', rawMessage: 'the plugin sent an error that is not JSON' })
  })

  it('turns what is not a gRPC error into internal', () => {
    expect(errorFromStatus(new Error('boom'), 'p', 'call')).toMatchObject({
      code: 'internal',
      rawMessage: 'boom',
      plugin: 'p',
    })
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

  it('reads what encodeErrorJson writes', () => {
    const error = new PluginError('kv:full', 'the store is full', { retryAfterMs: 5 })
    expect(parse(encodeErrorJson(error).toString())).toEqual({ ...error.toData(), plugin: 'kv' })
    expect(parse('null')).toEqual({ code: 'plugin_error', message: 'the plugin failed', plugin: 'kv' })
  })
})
