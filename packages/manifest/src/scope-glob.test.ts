import { describe, expect, it } from 'vitest'
import { intersectScopes, matchAnyScope, matchScope, scopeCovers } from './scope-glob.js'

describe('matchScope', () => {
  it.each([
    ['stats_*', 'stats_daily', true],
    ['stats_*', 'stats_', true],
    ['stats_*', 'stat_daily', false],
    ['*', 'anything.at.all', true],
    ['*.example.com', 'api.example.com', true],
    ['*.example.com', 'example.com', false],
    ['*.example.com', 'api.example.com.evil.net', false],
    ['api.example.com', 'apixexample.com', false],
    ['a+b', 'a+b', true],
    ['a+b', 'aab', false],
    ['(x)', '(x)', true],
    ['line', 'line\n', false],
  ])('%s matches %j: %s', (pattern, value, expected) => {
    expect(matchScope(pattern, value)).toBe(expected)
  })

  it('matches any of a list', () => {
    expect(matchAnyScope(['a_*', 'b'], 'b')).toBe(true)
    expect(matchAnyScope([], 'b')).toBe(false)
  })
})

describe('scopeCovers', () => {
  it.each([
    ['*', 'stats_*', true],
    ['stats_*', 'stats_d*', true],
    ['stats_d*', 'stats_*', false],
    ['*_daily', 'stats_*', false],
    ['a*b', 'a*b', true],
    ['a*', 'ab*c', true],
  ])('%s covers %s: %s', (outer, inner, expected) => {
    expect(scopeCovers(outer, inner)).toBe(expected)
  })
})

describe('intersectScopes', () => {
  it('keeps the narrower glob of each covering pair and drops partial overlaps', () => {
    expect(intersectScopes(['stats_*', 'a_*'], ['stats_daily', '*_b', '*'])).toEqual([
      'stats_daily',
      'stats_*',
      'a_*',
    ])
  })
})
