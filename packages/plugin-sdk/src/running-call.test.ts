import { isPluginError, PluginError } from '@corral/types'
import { describe, expect, it } from 'vitest'
import { HostConnection } from './host-client.js'
import { PluginBroker } from './plugin-broker.js'
import { RunningCall } from './running-call.js'

const connection = new HostConnection(new PluginBroker(undefined, undefined))

describe('RunningCall', () => {
  it('aborts its signal when the host cancels, with the reason', () => {
    const call = new RunningCall(connection, 't-1', undefined)
    const { signal } = call
    call.abort(new PluginError('canceled', 'stop'))
    expect(signal.aborted).toBe(true)
    expect(isPluginError(signal.reason) && signal.reason.code).toBe('canceled')
    expect(call.aborted).toBe(true)
  })

  it('hands out an already aborted signal when the cancel came first', () => {
    const call = new RunningCall(connection, 't-2', undefined)
    call.abort(new PluginError('canceled', 'early'))
    expect(call.signal.aborted).toBe(true)
  })

  it('aborts with deadline_exceeded when the deadline passes', async () => {
    const call = new RunningCall(connection, 't-3', Date.now() + 20)
    const reason = await new Promise((resolve) =>
      call.signal.addEventListener('abort', () => resolve(call.signal.reason)),
    )
    expect(isPluginError(reason) && reason.code).toBe('deadline_exceeded')
  })

  it('refuses host calls before init with unavailable', async () => {
    const call = new RunningCall(connection, 't-4', undefined)
    const error = await call.host.call('log', { level: 'info', message: 'hi' }).catch((e: unknown) => e)
    expect(isPluginError(error) && error.code).toBe('unavailable')
  })
})
