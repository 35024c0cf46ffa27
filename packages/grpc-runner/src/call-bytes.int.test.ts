import { isPluginError, type Plugin } from '@corral/types'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createGrpcRunner } from './grpc-runner.js'
import { fixtureManifest, fixturesDir, grantFor, memoryLogger, recordingHost } from './testing/support.js'

/** `Plugin.callBytes` over gRPC: the SDK's `bytesFunction` gets the caller's bytes and returns its own, untouched. */

const host = recordingHost()
const runner = createGrpcRunner({ logger: memoryLogger().logger })
const bytes = (text: string) => new TextEncoder().encode(text)
let plugin: Plugin

beforeAll(async () => {
  const manifest = fixtureManifest('bytes', 'sdk-plugin.mjs', ['well', 'bytes'])
  const grant = grantFor(manifest, { init_timeout: 5000, call_timeout: 10_000, max_output_bytes: 4096 })
  plugin = await runner.load({ manifest, dir: fixturesDir, grant, hostApi: host.handler })
  await plugin.register()
  await plugin.init({})
})
afterAll(() => runner.close())

describe('callBytes on the gRPC runner', () => {
  it('round-trips formatting, large integers, quoting and binary exactly', async () => {
    const inputs = [
      bytes('{"config":   "x" ,\n "b" : [1,2]}'),
      bytes('{"id": 12345678901234567890123}'),
      bytes('"quoted"'),
      bytes('quoted'),
      Uint8Array.from({ length: 256 }, (_, i) => i),
      new Uint8Array(0),
    ]
    for (const input of inputs) {
      const output = await plugin.callBytes('echoBytes', input)
      expect(output).toBeInstanceOf(Uint8Array)
      expect(Buffer.from(output).equals(Buffer.from(input))).toBe(true)
    }
    const reversed = await plugin.callBytes('reverseBytes', new Uint8Array([0, 1, 0xff]))
    expect([...reversed]).toEqual([0xff, 1, 0])
  })

  it('gives a JSON function the bytes as its JSON text, and returns its JSON text', async () => {
    expect(Buffer.from(await plugin.callBytes('echo', bytes('{"a": 1}'))).toString()).toBe('{"a":1}')
    const error = await plugin.callBytes('echo', bytes('not json')).catch((e: unknown) => e)
    expect(isPluginError(error) && error.code).toBe('invalid_argument')
  })

  it('holds bytes output to max_output_bytes', async () => {
    const error = await plugin.callBytes('echoBytes', new Uint8Array(5000)).catch((e: unknown) => e)
    expect(isPluginError(error) && error.code).toBe('resource_exhausted')
  })

  it('lets call() reach a bytes function with JSON text', async () => {
    expect(await plugin.call('echoBytes', { n: [1, 2] })).toEqual({ n: [1, 2] })
  })
})
