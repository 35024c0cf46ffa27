import { isPluginError } from '@corral/types'
import { Client, credentials } from '@grpc/grpc-js'
import { afterAll, describe, expect, it } from 'vitest'
import { GrpcBroker } from './grpc-broker.js'

describe('GrpcBroker', () => {
  // Opening the broker stream needs no server: nothing here connects.
  const client = new Client('127.0.0.1:9', credentials.createInsecure())
  afterAll(() => client.close())

  it('refuses to listen on TCP beyond loopback without mutual TLS', () => {
    let error: unknown
    try {
      new GrpcBroker(client, { listen: { network: 'tcp', host: '10.1.2.3' }, name: 'remote' })
    } catch (e) {
      error = e
    }
    expect(isPluginError(error) && error.code).toBe('invalid_argument')
  })

  it('listens on loopback TCP without TLS, where only this machine reaches it', async () => {
    const broker = new GrpcBroker(client, { listen: { network: 'tcp', host: '127.0.0.1' }, name: 'local' })
    try {
      const offered = await broker.serve(broker.nextId(), () => {})
      expect(offered).toEqual({ network: 'tcp', address: expect.stringMatching(/^127\.0\.0\.1:\d+$/) })
    } finally {
      broker.close()
    }
  })
})
