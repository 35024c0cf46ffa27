import { isPluginError } from '@corral/types'
import { describe, expect, it } from 'vitest'
import { checkPluginUser } from './plugin-user.js'

/** The code and message of the refusal of `uid:gid`; undefined when it is taken. */
const refusal = (uid: number, gid: number): [string, string] | undefined => {
  try {
    checkPluginUser({ uid, gid })
    return undefined
  } catch (error) {
    if (!isPluginError(error)) throw error
    return [error.code, error.rawMessage]
  }
}

describe('checkPluginUser', () => {
  it('takes an unprivileged uid and gid', () => {
    expect(refusal(65534, 65534)).toBeUndefined()
  })

  it('refuses root, root’s group, and what is no id', () => {
    expect(refusal(0, 65534)?.[1]).toMatch(/is root/)
    expect(refusal(65534, 0)?.[1]).toMatch(/in group root/)
    for (const [uid, gid] of [
      [-1, 1],
      [1.5, 1],
      [1, Number.NaN],
    ] as const)
      expect(refusal(uid, gid)?.[0]).toBe('invalid_argument')
  })
})
