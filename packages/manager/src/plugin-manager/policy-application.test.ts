import { describe, expect, it } from 'vitest'
import { policyAction } from './policy-application.js'

describe('policyAction', () => {
  it('stops a running plugin that is blocked now, and marks a failed one blocked', () => {
    expect(policyAction('running', true, 'approved', 'blocked')).toBe('stop')
    expect(policyAction('degraded', true, 'approved', 'blocked')).toBe('stop')
    expect(policyAction('failed', false, 'approved', 'blocked')).toBe('stop')
    expect(policyAction('blocked', false, 'blocked', 'blocked')).toBe('none')
  })

  it('loads a blocked plugin that is no longer blocked', () => {
    expect(policyAction('blocked', false, 'blocked', 'approved')).toBe('load')
    expect(policyAction('blocked', false, 'blocked', 'pending_review')).toBe('load')
  })

  it('starts a pending plugin again once an administrator decides, and updates a decided one live', () => {
    expect(policyAction('running', true, 'pending_review', 'approved')).toBe('reload')
    expect(policyAction('running', true, 'pending_review', 'restricted')).toBe('reload')
    expect(policyAction('running', true, 'pending_review', 'pending_review')).toBe('update')
    expect(policyAction('running', true, 'approved', 'restricted')).toBe('update')
  })

  it('loads a plugin that failed loading again under a policy that does not block it', () => {
    expect(policyAction('failed', false, 'pending_review', 'approved', true)).toBe('load')
    expect(policyAction('failed', false, 'restricted', 'approved', true)).toBe('load')
    expect(policyAction('failed', false, 'approved', 'blocked', true)).toBe('stop')
  })

  it('leaves a plugin that does not run, or failed at discovery, to its next load', () => {
    expect(policyAction('failed', false, 'pending_review', 'approved')).toBe('none')
    expect(policyAction('failed', false, 'pending_review', 'approved', false)).toBe('none')
    expect(policyAction('stopped', false, 'approved', 'restricted')).toBe('none')
    expect(policyAction('stopped', false, 'approved', 'restricted', true)).toBe('none')
  })
})
