import type { FastifyReply, FastifyRequest } from 'fastify'

/** Who may receive an event: every signed-in user, or administrators only. */
export type SseAudience = 'users' | 'admins'

interface Client {
  admin: boolean
  write(chunk: string): void
}

/** Server-sent events to the browsers of signed-in users. */
export interface SseHub {
  /** Takes over the response and keeps it open until the client goes or the hub closes. */
  connect(request: FastifyRequest, reply: FastifyReply): void
  /** Sends `event` with `data` (any text; each line becomes a `data:` line). */
  broadcast(event: string, data: string, audience?: SseAudience): void
  readonly clients: number
  /** Ends every stream (at shutdown, so that the server can drain). */
  close(): void
}

/** How often an idle stream gets a comment, so that proxies keep it open. */
const keepAliveMs = 15_000

export function createSseHub(): SseHub {
  const clients = new Set<Client>()
  const ends = new Set<() => void>()
  const frame = (event: string, data: string) =>
    `event: ${event}\n${data
      .split('\n')
      .map((line) => `data: ${line}`)
      .join('\n')}\n\n`
  return {
    connect(request, reply) {
      reply.hijack()
      const raw = reply.raw
      raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        // The stream is the connection's last response: when it ends, so does the connection.
        connection: 'close',
        'x-accel-buffering': 'no',
      })
      raw.write(': connected\n\n')
      const client: Client = { admin: request.user?.admin === true, write: (chunk) => raw.write(chunk) }
      const timer = setInterval(() => raw.write(': keep-alive\n\n'), keepAliveMs)
      const end = () => {
        clearInterval(timer)
        clients.delete(client)
        ends.delete(end)
        raw.end()
      }
      clients.add(client)
      ends.add(end)
      request.raw.once('close', end)
    },
    broadcast(event, data, audience = 'users') {
      const chunk = frame(event, data)
      for (const client of clients) if (audience === 'users' || client.admin) client.write(chunk)
    },
    get clients() {
      return clients.size
    },
    close() {
      for (const end of [...ends]) end()
    },
  }
}
