import Fastify from 'fastify'
import { expect, it } from 'vitest'
import { createJsonLogger, fastifyLoggerOptions } from './json-logger.js'

// The host writes two streams of logs, the plugin manager's and fastify's: one shape for both, so a
// log collector reads a plugin's refusal and the request it came with alike.

it('writes fastify’s log lines in the shape of the manager’s', async () => {
  const lines: string[] = []
  const write = (line: string) => lines.push(line)
  createJsonLogger('info', write).log('warn', 'plugin refused', { plugin: 'stats' })
  const app = Fastify({ logger: fastifyLoggerOptions('info', { write }) })
  app.log.warn({ plugin: 'stats' }, 'plugin refused')
  app.log.debug('below the level: not written')
  await app.close()

  expect(lines).toHaveLength(2)
  const [manager, server] = lines.map((line) => JSON.parse(line) as Record<string, unknown>)
  expect(manager).toEqual({
    time: expect.any(String),
    level: 'warn',
    message: 'plugin refused',
    plugin: 'stats',
  })
  expect(server).toEqual({
    time: expect.any(String),
    level: 'warn',
    message: 'plugin refused',
    plugin: 'stats',
  })
  expect(new Date(String(server?.time)).toISOString()).toBe(server?.time)
})
