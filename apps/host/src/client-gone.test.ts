import { once } from 'node:events'
import { createServer, request, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { isPluginError } from '@corral/types'
import { afterEach, describe, expect, it } from 'vitest'
import { clientGone } from './client-gone.js'

let server: Server | undefined

afterEach(async () => {
  server?.closeAllConnections()
  await new Promise((resolve) => server?.close(resolve))
  server = undefined
})

/** A server whose one response is handed to the test; the client's request is returned. */
async function exchange(): Promise<{ response: ServerResponse; client: ReturnType<typeof request> }> {
  const arrived = new Promise<ServerResponse>((resolve) => {
    server = createServer((_req, res) => {
      resolve(res)
    })
  })
  server?.listen(0, '127.0.0.1')
  await once(server as Server, 'listening')
  const { port } = (server as Server).address() as AddressInfo
  const client = request({ host: '127.0.0.1', port })
  client.on('error', () => {})
  client.end()
  return { response: await arrived, client }
}

describe('clientGone', () => {
  it('aborts, once, with canceled when the client goes away before the answer', async () => {
    const { response, client } = await exchange()
    const signal = clientGone(response)
    const calls: string[] = []
    signal.addEventListener('abort', () => calls.push('kept'), { once: true })
    const removed = () => calls.push('removed')
    signal.addEventListener('abort', removed, { once: true })
    signal.removeEventListener('abort', removed)
    expect(signal.aborted).toBe(false)
    client.destroy()
    await once(response, 'close')
    expect(signal.aborted).toBe(true)
    expect(isPluginError(signal.reason) && signal.reason.code).toBe('canceled')
    expect(calls).toEqual(['kept'])
    // Like an AbortSignal's, a listener added after the abort is never called.
    signal.addEventListener('abort', () => calls.push('late'))
    expect(calls).toEqual(['kept'])
  })

  it('does not abort when the answer was sent', async () => {
    const { response, client } = await exchange()
    const signal = clientGone(response)
    const calls: string[] = []
    signal.addEventListener('abort', () => calls.push('abort'))
    const answered = once(client, 'response')
    response.end('done')
    await once(response, 'close')
    await answered
    expect(signal.aborted).toBe(false)
    expect(signal.reason).toBeUndefined()
    expect(calls).toEqual([])
  })
})
