import { PluginError } from '@corral/types'
import addressparser from 'nodemailer/lib/addressparser'
import { z } from 'zod'
import { defineMethod, requireGrant } from '../method-handler.js'

const noLineBreaks = /^[^\r\n]*$/

/**
 * The one plain address a recipient string may hold. A display name, a group, or more than one
 * address in one entry is refused: what is checked must be exactly what is sent to.
 */
function recipient(entry: string): { address: string; domain: string } {
  const parsed = addressparser(entry)
  const only = parsed.length === 1 ? parsed[0] : undefined
  const address = only !== undefined && 'address' in only ? only.address : undefined
  if (
    address === undefined ||
    address !== entry.trim() ||
    !/^[^\s@"<>(),;:]+@[^\s@"<>(),;:]+$/.test(address)
  ) {
    throw new PluginError('invalid_argument', `recipient "${entry}" must be one plain address (local@domain)`)
  }
  return { address, domain: address.slice(address.lastIndexOf('@') + 1).toLowerCase() }
}

/**
 * `email.send`: sends through the host's mailer (SMTP, or the outbox when embedded). Needs `email`
 * on every recipient's domain. The sender is the host's address for the plugin, not the plugin's choice.
 */
export const emailSend = defineMethod({
  args: z.strictObject({
    to: z.array(z.string().min(3).max(320)).min(1).max(50),
    subject: z.string().max(998).regex(noLineBreaks, 'must be one line'),
    body: z.string().max(1 << 20),
    html: z
      .string()
      .max(1 << 20)
      .optional(),
  }),
  async run(args, scope) {
    const recipients = args.to.map(recipient)
    scope.describe(recipients.map((r) => r.domain).join(','))
    for (const r of recipients) requireGrant(scope, 'email', r.domain)
    const { messageId } = await scope.deps.mailer.send({
      plugin: scope.plugin,
      from: scope.deps.emailFrom(scope.plugin),
      to: recipients.map((r) => r.address),
      subject: args.subject,
      text: args.body,
      ...(args.html === undefined ? {} : { html: args.html }),
    })
    return { message_id: messageId }
  },
})
