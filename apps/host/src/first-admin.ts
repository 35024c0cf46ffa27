import { randomBytes } from 'node:crypto'
import type { UsersStore } from './auth/users-store.js'

/** The administrator made at first start; `password` only when it was generated (shown once). */
export interface FirstAdmin {
  username: string
  generatedPassword?: string
}

/**
 * Creates the first administrator when the host has no user yet: `admin`, with `password` when given
 * (CORRAL_ADMIN_PASSWORD), else a random one that the caller prints once. Later starts create nobody.
 */
export async function ensureFirstAdmin(
  users: UsersStore,
  password?: string,
): Promise<FirstAdmin | undefined> {
  if ((await users.count()) > 0) return undefined
  const chosen = password ?? randomBytes(12).toString('base64url')
  await users.create({ username: 'admin', password: chosen, admin: true })
  return password === undefined ? { username: 'admin', generatedPassword: chosen } : { username: 'admin' }
}
