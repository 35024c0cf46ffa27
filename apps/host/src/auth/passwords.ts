import bcrypt from 'bcryptjs'

/** bcrypt's cost: about 50 ms a hash here, slow enough to make guessing expensive. */
const cost = 10

/** A bcrypt hash of `password` (salted; bcrypt reads at most 72 bytes of it). */
export function hashPassword(password: string): Promise<string> {
  return bcrypt.hash(password, cost)
}

/** Whether `password` matches `hash`, in time that does not depend on where they differ. */
export function verifyPassword(password: string, hash: string): Promise<boolean> {
  return bcrypt.compare(password, hash)
}
