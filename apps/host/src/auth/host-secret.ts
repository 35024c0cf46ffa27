import { randomBytes } from 'node:crypto'
import type { SqlDatabase } from '@corral/manager'

/**
 * The host's secret key (what CSRF tokens are signed with), made at first start and kept in the
 * host database, so that it survives restarts and every replica shares it.
 */
export async function loadHostSecret(database: SqlDatabase): Promise<string> {
  await database.exec(
    'CREATE TABLE IF NOT EXISTS corral_host_secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL)',
    [],
  )
  await database.exec(
    'INSERT INTO corral_host_secrets (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING',
    ['csrf', randomBytes(32).toString('base64url')],
  )
  const [row] = await database.query('SELECT value FROM corral_host_secrets WHERE name = $1', ['csrf'])
  return String(row?.value)
}
