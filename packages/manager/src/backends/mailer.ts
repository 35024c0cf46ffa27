/** An email the host sends on a plugin's behalf; recipients have been checked already. */
export interface OutgoingEmail {
  /** The plugin that asked. */
  plugin: string
  from: string
  to: string[]
  subject: string
  /** Plain text. */
  text: string
  html?: string
}

/** Delivers emails: SMTP at scale, an outbox in the database when embedded. */
export interface Mailer {
  send(email: OutgoingEmail): Promise<{ messageId: string }>
  close(): Promise<void>
}
