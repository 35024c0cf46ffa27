import { corralErrorCodes } from '@corral/types'
import { status } from '@grpc/grpc-js'
import { describe, expect, it } from 'vitest'
import { codeFromStatus, statusFromCode } from './grpc-status.js'

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

  it('round-trips every Corral code that has a status, and sends the rest as UNKNOWN', () => {
    const ownStatus = [
      'already_exists',
      'canceled',
      'deadline_exceeded',
      'internal',
      'invalid_argument',
      'not_found',
      'permission_denied',
      'plugin_error',
      'resource_exhausted',
      'unavailable',
      'unimplemented',
    ]
    for (const code of corralErrorCodes) {
      const grpcStatus = statusFromCode(code)
      if (ownStatus.includes(code)) expect([code, codeFromStatus(grpcStatus)]).toEqual([code, code])
      else expect([code, grpcStatus]).toEqual([code, status.UNKNOWN])
    }
  })

  it('gives every gRPC status a Corral code, and a status it does not know `internal`', () => {
    for (const grpcStatus of Object.values(status).filter((value) => typeof value === 'number')) {
      expect(corralErrorCodes).toContain(codeFromStatus(grpcStatus))
    }
    expect(codeFromStatus(status.OK)).toBe('internal')
    expect(codeFromStatus(-1)).toBe('internal')
  })

  it('maps a code shared by several statuses to the canonical one', () => {
    expect(statusFromCode('permission_denied')).toBe(status.PERMISSION_DENIED)
    expect(statusFromCode('invalid_argument')).toBe(status.INVALID_ARGUMENT)
    expect(statusFromCode('unavailable')).toBe(status.UNAVAILABLE)
    expect(statusFromCode('internal')).toBe(status.INTERNAL)
  })
})
