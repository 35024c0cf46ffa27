import { randomUUID } from 'node:crypto'
import { migrateHostTables } from '../policy-store/policy-store.js'
import type { Mailer, OutgoingEmail } from './mailer.js'
import type { SqlDatabase } from './sql-database.js'

/** An email kept in the outbox, as the host shows it. */
export interface OutboxEmail extends OutgoingEmail {
  messageId: string
  /** Epoch milliseconds. */
  at: number
}

/** A {@link Mailer} that keeps what it "sends" in a table the host can list. */
export interface OutboxMailer extends Mailer {
  /** Newest first. */
  list(query?: { plugin?: string; limit?: number }): Promise<OutboxEmail[]>
}

/**
 * The embedded mailer: no mail server needed. Every email goes to table `corral_outbox` of the
 * host's database, where the host (its admin UI) can show it.
 *
 * @example
 * const outbox = createOutboxMailer(backends.database)
 * await outbox.list({ plugin: 'notify' })
 */
export function createOutboxMailer(database: SqlDatabase, now: () => number = Date.now): OutboxMailer {
  return {
    async send(email) {
      await migrateHostTables(database)
      const messageId = `<${randomUUID()}@corral.outbox>`
      await database.exec(
        'INSERT INTO corral_outbox (at, plugin, message_id, sender, recipients, subject, body, html) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)',
        [
          now(),
          email.plugin,
          messageId,
          email.from,
          JSON.stringify(email.to),
          email.subject,
          email.text,
          email.html ?? null,
        ],
      )
      return { messageId }
    },
    async list(query = {}) {
      await migrateHostTables(database)
      const limit = Math.min(Math.max(1, Math.floor(query.limit ?? 100)), 1000)
      const rows =
        query.plugin === undefined
          ? await database.query(`SELECT * FROM corral_outbox ORDER BY id DESC LIMIT ${limit}`, [])
          : await database.query(
              `SELECT * FROM corral_outbox WHERE plugin = $1 ORDER BY id DESC LIMIT ${limit}`,
              [query.plugin],
            )
      return rows.map((row) => {
        const email: OutboxEmail = {
          messageId: String(row.message_id),
          at: Number(row.at),
          plugin: String(row.plugin),
          from: String(row.sender),
          to: JSON.parse(String(row.recipients)) as string[],
          subject: String(row.subject),
          text: String(row.body),
        }
        if (row.html !== null) email.html = String(row.html)
        return email
      })
    },
    async close() {},
  }
}
