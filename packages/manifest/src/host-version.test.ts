import { describe, expect, it } from 'vitest'
import { checkHostVersion } from './host-version.js'

const plugin = (min_host_version?: string) => ({
  name: 'stats',
  version: '1.0.0',
  ...(min_host_version ? { min_host_version } : {}),
})

describe('checkHostVersion', () => {
  it('accepts a host inside the range, and any host when there is none', () => {
    expect(() => checkHostVersion(plugin('>=0.1.0 <2'), '1.4.0')).not.toThrow()
    expect(() => checkHostVersion(plugin(), '0.0.1')).not.toThrow()
    expect(() => checkHostVersion(plugin('>=1.0.0'), '1.1.0-rc.1')).not.toThrow()
  })

  it('fails with incompatible and names both versions', () => {
    expect(() => checkHostVersion(plugin('>=2.0.0'), '1.4.0')).toThrow(
      expect.objectContaining({
        code: 'incompatible',
        message: expect.stringMatching(/needs host >=2\.0\.0, but this host is 1\.4\.0/),
      }),
    )
  })

  it('refuses a host version that is not semver', () => {
    expect(() => checkHostVersion(plugin('>=1.0.0'), 'latest')).toThrow(
      expect.objectContaining({ code: 'invalid_argument' }),
    )
  })
})
