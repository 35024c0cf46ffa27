import type { AddressInfo } from 'node:net'
import { SMTPServer } from 'smtp-server'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestHost, expectRefused } from '../testing/host-fixture.js'
import { type Backends, createBackends } from './create-backends.js'
import type { Mailer } from './mailer.js'
import { createSmtpMailer } from './smtp-mailer.js'

/** A real SMTP server on 127.0.0.1 that keeps what it receives. */
const received: { from: string; to: string[]; data: string }[] = []
let server: SMTPServer
let port: number

beforeAll(async () => {
  server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = []
      stream.on('data', (c: Buffer) => chunks.push(c))
      stream.on('end', () => {
        received.push({
          from: session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address,
          to: session.envelope.rcptTo.map((r) => r.address),
          data: Buffer.concat(chunks).toString(),
        })
        callback()
      })
    },
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  port = (server.server.address() as AddressInfo).port
})
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()))
})

describe('email.send through SMTP', () => {
  let backends: Backends
  let mailer: Mailer
  beforeAll(async () => {
    backends = await createBackends({ databaseUrl: '', redisUrl: '' })
    mailer = createSmtpMailer({ url: `smtp://127.0.0.1:${port}` })
  })
  afterAll(async () => {
    await mailer.close()
    await backends.close()
  })

  it('delivers a granted email to the SMTP server, and nothing for a refused one', async () => {
    const host = await createTestHost(
      backends,
      [{ name: 'notify', permissions: [{ type: 'email', access: [], scope: ['example.com'] }] }],
      { mailer },
    )
    const result = (await host.call('notify', 'email.send', {
      to: ['ops@example.com'],
      subject: 'Disk low',
      body: 'only 3% left',
    })) as { message_id: string }
    expect(result.message_id).toMatch(/^<.+>$/)
    expect(received).toHaveLength(1)
    expect(received[0]).toMatchObject({ from: 'notify@corral.localhost', to: ['ops@example.com'] })
    expect(received[0]?.data).toContain('Subject: Disk low')
    expect(received[0]?.data).toContain('X-Corral-Plugin: notify')
    expect(received[0]?.data).toContain('only 3% left')

    await expectRefused(
      host.call('notify', 'email.send', { to: ['ops@example.com', 'x@evil.com'], subject: 's', body: 'b' }),
      'permission_denied',
    )
    expect(received).toHaveLength(1)
  })

  it('reports an unreachable server as unavailable', async () => {
    const down = createSmtpMailer({ url: 'smtp://127.0.0.1:1' })
    await expect(
      down.send({ plugin: 'notify', from: 'a@b.c', to: ['ops@example.com'], subject: 's', text: 't' }),
    ).rejects.toMatchObject({ code: 'unavailable' })
    await down.close()
  })
})
