import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { isPluginError } from '@corral/types'
import { afterAll, describe, expect, it } from 'vitest'
import { parsePluginUser } from './plugin-user.js'

const dir = await mkdtemp(path.join(os.tmpdir(), 'corral-passwd-'))
const passwd = path.join(dir, 'passwd')
await writeFile(
  passwd,
  'root:x:0:0:root:/root:/bin/bash\ncorral-plugins:x:990:985::/nonexistent:/usr/sbin/nologin\n',
)
afterAll(() => rm(dir, { recursive: true, force: true }))

describe('parsePluginUser', () => {
  it('reads uid:gid as it is', () => {
    expect(parsePluginUser('1500:1600', passwd)).toEqual({ uid: 1500, gid: 1600 })
  })

  it('looks a name up in the passwd file: its uid and primary group', () => {
    expect(parsePluginUser('corral-plugins', passwd)).toEqual({ uid: 990, gid: 985 })
  })

  it('refuses an unknown name or a malformed value, naming the variable', () => {
    for (const value of ['corral', '990', '990:', 'x:1']) {
      let error: unknown
      try {
        parsePluginUser(value, passwd)
      } catch (e) {
        error = e
      }
      expect(isPluginError(error) && [error.code, error.rawMessage]).toEqual([
        'invalid_argument',
        `CORRAL_PLUGIN_USER=${value}: neither uid:gid nor a user in ${passwd}`,
      ])
    }
  })
})
