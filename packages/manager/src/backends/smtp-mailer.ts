import { PluginError } from '@corral/types'
import nodemailer from 'nodemailer'
import type { Mailer } from './mailer.js'

/** Options of {@link createSmtpMailer}. */
export interface SmtpMailerOptions {
  /** An `smtp://` or `smtps://` URL (what `SMTP_URL` holds), e.g. `smtp://user:pass@mail.example.com:587`. */
  url: string
}

/**
 * A mailer that sends through an SMTP server (nodemailer).
 *
 * @example
 * const mailer = createSmtpMailer({ url: process.env.SMTP_URL })
 */
export function createSmtpMailer(options: SmtpMailerOptions): Mailer {
  const transport = nodemailer.createTransport(options.url)
  return {
    async send(email) {
      try {
        const info = await transport.sendMail({
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
      transport.close()
    },
  }
}
