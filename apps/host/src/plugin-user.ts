import { readFileSync } from 'node:fs'
import type { PluginUser } from '@corral/grpc-runner'
import { PluginError } from '@corral/types'

/**
 * The user `CORRAL_PLUGIN_USER` names: `uid:gid`, or a user name in `passwdFile` (its uid and
 * primary group). Names served only by NSS (LDAP, systemd's dynamic users) are not looked up: give
 * those as `uid:gid`.
 *
 * @example
 * parsePluginUser('nobody') // { uid: 65534, gid: 65534 } on Debian
 * parsePluginUser('1500:1500')
 */
export function parsePluginUser(value: string, passwdFile = '/etc/passwd'): PluginUser {
  const ids = /^(\d+):(\d+)$/.exec(value)
  if (ids !== null) return { uid: Number(ids[1]), gid: Number(ids[2]) }
  const entry = readFileSync(passwdFile, 'utf8')
    .split('\n')
    .map((line) => line.split(':'))
    .find((fields) => fields[0] === value && fields.length >= 4)
  if (entry === undefined) {
    throw new PluginError(
      'invalid_argument',
      `CORRAL_PLUGIN_USER=${value}: neither uid:gid nor a user in ${passwdFile}`,
    )
  }
  return { uid: Number(entry[2]), gid: Number(entry[3]) }
}
