import { PluginError } from '@corral/types'
import type { Transporter } from 'nodemailer'
import type { Mailer } from './mailer.js'

/** Options of {@link createSmtpMailer}. */
export interface SmtpMailerOptions {
  /** An `smtp://` or `smtps://` URL (what `SMTP_URL` holds), e.g. `smtp://user:pass@mail.example.com:587`. */
  url: string
}

/**
 * A mailer that sends through an SMTP server (nodemailer, loaded on the first email, so a host
 * that keeps the embedded outbox does not load it).
 *
 * @example
 * const mailer = createSmtpMailer({ url: process.env.SMTP_URL })
 */
export function createSmtpMailer(options: SmtpMailerOptions): Mailer {
  let transport: Promise<Transporter> | undefined
  const open = async () => (await import('nodemailer')).default.createTransport(options.url)
  return {
    async send(email) {
      try {
        transport ??= open()
        const info = await (await transport).sendMail({
          from: email.from,
          to: email.to,
          subject: email.subject,
          text: email.text,
          ...(email.html === undefined ? {} : { html: email.html }),
          headers: { 'X-Corral-Plugin': email.plugin },
        })
        return { messageId: String(info.messageId) }
      } catch (error) {
        throw new PluginError('unavailable', `SMTP delivery failed: ${(error as Error).message}`, {
          cause: error,
        })
      }
    },
    async close() {
      if (transport !== undefined) (await transport).close()
    },
  }
}
