import { randomBytes } from 'node:crypto'
import { PluginError } from '@corral/types'
import { checkNewPassword } from './auth/passwords.js'
import type { UsersStore } from './auth/users-store.js'

/** The administrator made at first start; `password` only when it was generated (shown once). */
export interface FirstAdmin {
  username: string
  generatedPassword?: string
}

/**
 * Throws `invalid_argument` naming CORRAL_ADMIN_PASSWORD unless the first administrator's chosen
 * password may be set (see `checkNewPassword`): a host checks it before it starts anything.
 */
export function checkFirstAdminPassword(password: string): void {
  try {
    checkNewPassword(password)
  } catch (error) {
    const failure = PluginError.from(error, 'invalid_argument')
    throw new PluginError('invalid_argument', `CORRAL_ADMIN_PASSWORD: ${failure.rawMessage}`, {
      fields: [{ field: 'CORRAL_ADMIN_PASSWORD', message: failure.fields[0]?.message ?? 'is invalid' }],
    })
  }
}

/**
 * Creates the first administrator when the host has no user yet: `admin`, with `password` when given
 * (CORRAL_ADMIN_PASSWORD), else a random one that the caller prints once. Later starts create nobody.
 * A host calls it once everything else has started: a start that fails creates no one, so a
 * generated password is never lost to a failed start.
 */
export async function ensureFirstAdmin(
  users: UsersStore,
  password?: string,
): Promise<FirstAdmin | undefined> {
  if ((await users.count()) > 0) return undefined
  if (password !== undefined) checkFirstAdminPassword(password)
  const chosen = password ?? randomBytes(12).toString('base64url')
  await users.create({ username: 'admin', password: chosen, admin: true })
  return password === undefined ? { username: 'admin', generatedPassword: chosen } : { username: 'admin' }
}
