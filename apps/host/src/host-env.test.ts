import { describe, expect, it } from 'vitest'
import { readHostEnv } from './host-env.js'

describe('readHostEnv', () => {
  it('reads nothing from an environment that sets nothing, or sets it empty', () => {
    expect(readHostEnv({})).toEqual({})
    expect(readHostEnv({ CORRAL_LOG_LEVEL: '', CORRAL_TRUST_PROXY: '' })).toEqual({})
  })

  it('reads the log level, and refuses one it does not know', () => {
    expect(readHostEnv({ CORRAL_LOG_LEVEL: 'debug' })).toEqual({ logLevel: 'debug' })
    expect(readHostEnv({ CORRAL_LOG_LEVEL: 'WARN' })).toEqual({ logLevel: 'warn' })
    expect(() => readHostEnv({ CORRAL_LOG_LEVEL: 'verbose' })).toThrow(
      /CORRAL_LOG_LEVEL is verbose; it is one of trace, debug, info, warn, error/,
    )
  })

  it('reads true, a hop count, or proxy addresses and ranges', () => {
    expect(readHostEnv({ CORRAL_TRUST_PROXY: 'true' })).toEqual({ trustProxy: true })
    expect(readHostEnv({ CORRAL_TRUST_PROXY: 'false' })).toEqual({ trustProxy: false })
    expect(readHostEnv({ CORRAL_TRUST_PROXY: '10.0.0.0/8, 127.0.0.1,::1,loopback' })).toEqual({
      trustProxy: ['10.0.0.0/8', '127.0.0.1', '::1', 'loopback'],
    })
    const hops = readHostEnv({ CORRAL_TRUST_PROXY: '2' }).trustProxy as (
      address: string,
      hop: number,
    ) => boolean
    expect([0, 1, 2].map((hop) => hops('192.0.2.1', hop))).toEqual([true, true, false])
    expect(() => readHostEnv({ CORRAL_TRUST_PROXY: 'yes' })).toThrow(/CORRAL_TRUST_PROXY .*"yes"/)
  })
})
