import type { Permission, ResourcePolicy, ResourceRequest } from '@corral/types'
import { describe, expect, it } from 'vitest'
import { parsePolicy } from './parse-policy.js'
import { defaultLimits, defaultPolicy, effectiveGrant } from './policy.js'

const db = (access: Permission['access'], ...scope: string[]): Permission => ({ type: 'db', access, scope })
const http = (...scope: string[]): Permission => ({ type: 'http', access: [], scope })
const policy = (grants: Permission[], overrides: Partial<ResourcePolicy> = {}): ResourcePolicy => ({
  ...defaultPolicy('stats'),
  status: 'approved',
  grants,
  ...overrides,
})

describe('effectiveGrant', () => {
  // [what, requested, granted, effective]
  const table: Array<[string, Permission[], Permission[], Permission[]]> = [
    [
      'same request and grant',
      [db(['read'], 'stats_*')],
      [db(['read'], 'stats_*')],
      [db(['read'], 'stats_*')],
    ],
    [
      'access narrows to the grant',
      [db(['read', 'write'], 'stats_*')],
      [db(['read'], 'stats_*')],
      [db(['read'], 'stats_*')],
    ],
    [
      'never more access than requested',
      [db(['read'], 'stats_*')],
      [db(['read', 'write'], 'stats_*')],
      [db(['read'], 'stats_*')],
    ],
    ['no common access: nothing', [db(['write'], 'stats_*')], [db(['read'], 'stats_*')], []],
    [
      'a wider grant keeps the request',
      [db(['read'], 'stats_*')],
      [db(['read'], '*')],
      [db(['read'], 'stats_*')],
    ],
    [
      'a narrower grant wins',
      [db(['read'], 'stats_*')],
      [db(['read'], 'stats_daily')],
      [db(['read'], 'stats_daily')],
    ],
    ['disjoint scopes: nothing', [db(['read'], 'stats_*')], [db(['read'], 'users')], []],
    ['partial overlap is dropped, never widened', [db(['read'], 'a_*')], [db(['read'], '*_b')], []],
    [
      'several globs keep what each covers',
      [db(['read'], 'stats_*', 'logs_*')],
      [db(['read'], 'stats_daily', 'logs_*', 'users')],
      [db(['read'], 'stats_daily', 'logs_*')],
    ],
    ['a grant of another type gives nothing', [db(['read'], 'stats_*')], [http('api.example.com')], []],
    ['not requested: not granted', [], [db(['read', 'write'], '*')], []],
    [
      'http host globs narrow',
      [http('*.example.com')],
      [http('api.example.com', 'evil.com')],
      [http('api.example.com')],
    ],
    [
      'http wildcard grant keeps the requested host',
      [http('api.example.com')],
      [http('*')],
      [http('api.example.com')],
    ],
    [
      'two grants of one type merge per access',
      [db(['read', 'write'], 'stats_*')],
      [db(['read'], 'stats_*'), db(['read', 'write'], 'stats_tmp')],
      [db(['read'], 'stats_*'), db(['read', 'write'], 'stats_tmp')],
    ],
    [
      'cache and fs keep access semantics',
      [
        { type: 'fs', access: ['read', 'write'], scope: ['data'] },
        { type: 'cache', access: ['read', 'write'], scope: ['*'] },
      ],
      [
        { type: 'fs', access: ['read'], scope: ['data'] },
        { type: 'cache', access: ['read'], scope: ['public:*'] },
      ],
      [
        { type: 'fs', access: ['read'], scope: ['data'] },
        { type: 'cache', access: ['read'], scope: ['public:*'] },
      ],
    ],
  ]

  it.each(table)('%s', (_what, requested, granted, expected) => {
    const grant = effectiveGrant({ permissions: requested }, policy(granted))
    expect(grant.permissions).toEqual(expected)
  })

  it('takes the smaller of each requested and allowed limit', () => {
    const request: ResourceRequest = {
      permissions: [],
      memory_mb: 512,
      call_timeout: 100,
      init_timeout: 60_000,
    }
    const grant = effectiveGrant(
      request,
      policy([], { limits: { ...defaultLimits, memory_mb: 64, call_timeout: 1000 } }),
    )
    expect(grant.limits).toEqual({
      ...defaultLimits,
      memory_mb: 64,
      call_timeout: 100,
      init_timeout: defaultLimits.init_timeout,
    })
  })

  it('takes the limits only an administrator sets from the policy, whatever the manifest asks', () => {
    const adminOnly = {
      max_host_call_bytes: 4096,
      max_instances: 2,
      max_open_files: 8,
      max_concurrent_calls: 3,
      max_queued_calls: 0,
    }
    const grant = effectiveGrant(
      { permissions: [], memory_mb: 16 },
      policy([], { limits: { ...defaultLimits, ...adminOnly } }),
    )
    expect(grant.limits).toMatchObject({ ...adminOnly, memory_mb: 16 })
  })

  it('gives a pending_review plugin only the default grant, whatever the policy lists', () => {
    const grant = effectiveGrant(
      { permissions: [db(['read'], 'stats_*')], memory_mb: 4096 },
      policy([db(['read'], '*')], {
        status: 'pending_review',
        limits: { ...defaultLimits, memory_mb: 4096 },
      }),
    )
    expect(grant.status).toBe('pending_review')
    expect(grant.permissions).toEqual([])
    expect(grant.limits.memory_mb).toBe(defaultLimits.memory_mb)
  })

  it('gives a blocked plugin nothing', () => {
    const grant = effectiveGrant(
      { permissions: [db(['read'], 'stats_*')] },
      policy([db(['read'], '*')], { status: 'blocked' }),
    )
    expect(grant.permissions).toEqual([])
    expect(grant.status).toBe('blocked')
  })

  it('applies a restricted policy like an approved one', () => {
    const grant = effectiveGrant(
      { permissions: [db(['read', 'write'], 'stats_*')] },
      policy([db(['read'], 'stats_*')], { status: 'restricted' }),
    )
    expect(grant.permissions).toEqual([db(['read'], 'stats_*')])
  })

  it('carries the secret config keys and rate limits of the policy', () => {
    const grant = effectiveGrant(
      { permissions: [] },
      policy([], {
        secret_config_keys: ['smtp.password'],
        rate_limits: { calls_per_second: 5, db_queries_per_minute: 1, http_requests_per_minute: 2 },
      }),
    )
    expect(grant.secret_config_keys).toEqual(['smtp.password'])
    expect(grant.rate_limits.calls_per_second).toBe(5)
  })

  it('carries the environment grant and the transport opt-out of a decided policy', () => {
    for (const status of ['approved', 'restricted'] as const) {
      const grant = effectiveGrant(
        { permissions: [] },
        policy([], { status, env: ['TZ'], unauthenticated_transport: true }),
      )
      expect([grant.env, grant.unauthenticated_transport]).toEqual([['TZ'], true])
    }
  })

  it('grants no environment and no opt-out before a decision, or to a blocked plugin', () => {
    for (const status of ['pending_review', 'blocked'] as const) {
      const grant = effectiveGrant(
        { permissions: [] },
        policy([], { status, env: ['TZ'], unauthenticated_transport: true }),
      )
      expect([grant.env, grant.unauthenticated_transport]).toEqual([[], false])
    }
    expect(effectiveGrant({ permissions: [] }, policy([]))).toMatchObject({
      env: [],
      unauthenticated_transport: false,
    })
  })
})

describe('parsePolicy', () => {
  it('reads env and unauthenticated_transport, and refuses a name that is no variable', () => {
    const parsed = parsePolicy({
      plugin: 'kv',
      status: 'restricted',
      env: ['TZ', 'LANG'],
      unauthenticated_transport: true,
    })
    expect([parsed.env, parsed.unauthenticated_transport]).toEqual([['TZ', 'LANG'], true])
    expect(() => parsePolicy({ plugin: 'kv', status: 'approved', env: ['A=B'] })).toThrow(/env/)
    expect(() => parsePolicy({ plugin: 'kv', status: 'approved', unauthenticated_transport: 'yes' })).toThrow(
      /unauthenticated_transport/,
    )
  })
})

describe('defaultPolicy', () => {
  it('is pending review with no grants', () => {
    expect(defaultPolicy('stats')).toMatchObject({ plugin: 'stats', status: 'pending_review', grants: [] })
  })

  it('returns a fresh copy each time', () => {
    const a = defaultPolicy('a')
    a.limits.memory_mb = 1
    expect(defaultPolicy('a').limits.memory_mb).toBe(defaultLimits.memory_mb)
  })
})
