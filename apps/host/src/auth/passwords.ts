import { PluginError } from '@corral/types'
import bcrypt from 'bcryptjs'

/** bcrypt's cost: about 50 ms a hash here, slow enough to make guessing expensive. */
const cost = 10
/** Below this a password is refused (NIST SP 800-63B's minimum for user-chosen secrets). */
export const minPasswordLength = 8
/** bcrypt reads no more than this of a password: a longer one would be cut without a word, so it is refused. */
export const maxPasswordBytes = 72

/**
 * Throws `invalid_argument` on the `password` field unless `password` may be set: at least
 * {@link minPasswordLength} characters, at most {@link maxPasswordBytes} bytes of UTF-8.
 */
export function checkNewPassword(password: string): void {
  if (password.length < minPasswordLength)
    throw new PluginError('invalid_argument', `a password has at least ${minPasswordLength} characters`, {
      fields: [{ field: 'password', message: `must have at least ${minPasswordLength} characters` }],
    })
  const bytes = Buffer.byteLength(password, 'utf8')
  if (bytes > maxPasswordBytes)
    throw new PluginError(
      'invalid_argument',
      `a password has at most ${maxPasswordBytes} bytes (UTF-8), all of which bcrypt checks; this one has ${bytes}`,
      { fields: [{ field: 'password', message: `must have at most ${maxPasswordBytes} bytes` }] },
    )
}

/** A bcrypt hash of `password` (salted; bcrypt reads at most 72 bytes of it: see {@link checkNewPassword}). */
export function hashPassword(password: string): Promise<string> {
  return bcrypt.hash(password, cost)
}

/** Whether `password` matches `hash`, in time that does not depend on where they differ. */
export function verifyPassword(password: string, hash: string): Promise<boolean> {
  return bcrypt.compare(password, hash)
}
