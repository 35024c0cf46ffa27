import { spawn } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { corralHandshake, generateCertificate, pluginService, unary } from '@corral/proto'
import { isPluginError, type Plugin } from '@corral/types'
import { Client } from '@grpc/grpc-js'
import { afterAll, describe, expect, it } from 'vitest'
import { type GoPluginClient, reattachGoPlugin, startGoPlugin } from './go-plugin-client.js'
import { createGrpcRunner } from './grpc-runner.js'
import {
  eventually,
  examplePlugin,
  examplesDir,
  fixturesDir,
  memoryLogger,
  processExists,
  recordingHost,
} from './testing/support.js'

const helloGrpc = join(examplesDir, 'hello-grpc/dist/main.js')
const goKv = join(examplesDir, 'go-kv/build/go-kv')
const logs = memoryLogger()

/** A process's environment, as Linux shows it. */
function environment(pid: number): Record<string, string> {
  const entries = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean)
  return Object.fromEntries(
    entries.map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]),
  )
}

describe('AutoMTLS', () => {
  const runner = createGrpcRunner({ autoMtls: true, logger: logs.logger })
  afterAll(() => runner.close())

  it('serves a TypeScript plugin over TLS both ways: calls, and host calls over the broker', async () => {
    const host = recordingHost()
    const { manifest, dir, grant } = await examplePlugin('hello-grpc')
    const plugin: Plugin = await runner.load({ manifest, dir, grant, hostApi: host.handler })
    await plugin.register()
    await plugin.init({})
    expect(await plugin.call('greet', { name: 'TLS' })).toEqual({ text: 'Hello, TLS!', count: 1 })
    expect(host.calls.map((c) => c.method)).toEqual(['db.exec', 'cache.get', 'cache.set'])
  })

  it('presents one host certificate to every plugin it starts', async () => {
    const { manifest, dir, grant } = await examplePlugin('hello-grpc')
    const plugins = [
      await runner.load({ manifest, dir, grant, hostApi: recordingHost().handler }),
      await runner.load({ manifest, dir, grant, hostApi: recordingHost().handler }),
    ]
    try {
      const [first, second] = plugins.map((plugin) => environment(plugin.pid as number).PLUGIN_CLIENT_CERT)
      expect(first).toContain('BEGIN CERTIFICATE')
      expect(second).toBe(first)
      for (const plugin of plugins) await plugin.register()
    } finally {
      await Promise.all(plugins.map((plugin) => plugin.shutdown()))
    }
  })

  it('presents the host certificate it is given', async () => {
    const hostCertificate = await generateCertificate()
    const client = await startGoPlugin({
      command: goKv,
      handshake: corralHandshake,
      autoMtls: true,
      hostCertificate,
      logger: logs.logger,
    })
    try {
      expect(client.reattachConfig.tls?.certPem).toBe(hostCertificate.certPem)
      expect(await client.health(5000)).toBe(true)
    } finally {
      await client.stop()
    }
  })

  it('starts go-plugin 1.0.1’s AutoMTLS server, with the Go SDK’s P-256 certificate, and health-checks it', async () => {
    const client = await startGoPlugin({
      command: goKv,
      handshake: corralHandshake,
      autoMtls: true,
      logger: logs.logger,
    })
    try {
      // The SDK's own certificate: go-plugin's would be P-521, some 15 ms of CPU at every start.
      const certificate = new X509Certificate(client.reattachConfig.tls?.peerCertPem ?? '')
      expect(certificate.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1')
      expect(certificate.checkHost('localhost')).toBe('localhost')
      expect(await client.health(5000)).toBe(true)
      const response = await unary(client.rpc, pluginService.register, {})
      // go-kv's own registration: what it provides (its identity comes from its plugin.yaml).
      expect(JSON.parse(Buffer.from(response.registrationJson ?? []).toString())).toMatchObject({
        routes: expect.arrayContaining([expect.objectContaining({ path: '/kv/:key', handler: 'getRoute' })]),
      })
    } finally {
      await client.stop()
    }
    await eventually(() => !processExists(client.pid as number), 5000, 'go-kv to exit')
  })
})

describe('reattachGoPlugin', () => {
  let started: GoPluginClient | undefined
  afterAll(async () => {
    await started?.stop()
  })

  it('reattaches over TCP with mutual TLS, and refuses a client the plugin does not trust', async () => {
    started = await startGoPlugin({
      command: process.execPath,
      args: [helloGrpc],
      handshake: corralHandshake,
      autoMtls: true,
      env: { CORRAL_PLUGIN_NETWORK: 'tcp' },
      portRange: { min: 42_000, max: 42_999 },
      logger: logs.logger,
    })
    const config = started.reattachConfig
    expect(config.network).toBe('tcp')
    expect(config.address).toMatch(/^127\.0\.0\.1:42\d{3}$/)

    const reattached = await reattachGoPlugin({ ...config, logger: logs.logger })
    expect(await reattached.health(5000)).toBe(true)
    const response = await unary(reattached.rpc, pluginService.register, {})
    // hello-grpc's own registration: what it provides (its identity comes from its plugin.yaml).
    expect(JSON.parse(Buffer.from(response.registrationJson ?? []).toString())).toMatchObject({
      routes: expect.arrayContaining([expect.objectContaining({ path: '/greet', handler: 'greetRoute' })]),
    })

    const stranger = await generateCertificate()
    const refused = await reattachGoPlugin({
      ...config,
      tls: { peerCertPem: config.tls?.peerCertPem ?? '', ...stranger },
      connectTimeoutMs: 1000,
      logger: logs.logger,
    }).catch((e: unknown) => e)
    expect(isPluginError(refused) && refused.code).toBe('load_failed')

    // The reattached client stops the plugin: Shutdown through the controller.
    const pid = started.pid as number
    await reattached.stop()
    await eventually(() => !processExists(pid), 5000, 'the plugin to exit')
  })

  it('refuses a pid that is not running with unavailable', async () => {
    const error = await reattachGoPlugin({
      network: 'unix',
      address: '/nonexistent.sock',
      pid: 2 ** 22 + 1,
      protocolVersion: 1,
    }).catch((e: unknown) => e)
    expect(isPluginError(error) && error.code).toBe('unavailable')
  })
})

describe('a host killed outright', () => {
  it('takes its plugins with it: a Go binary (parent-death signal) and an SDK plugin', async () => {
    // The killed host cannot remove its plugins' socket folders: they go in one this test removes.
    const scratch = mkdtempSync(join(tmpdir(), 'corral-test-'))
    const hostProcess = spawn(process.execPath, [join(fixturesDir, 'host-process.mjs'), goKv, helloGrpc], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, TMPDIR: scratch },
    })
    const [line] = await new Promise<string[]>((resolve, reject) => {
      createInterface({ input: hostProcess.stdout }).once('line', (first) => resolve([first]))
      hostProcess.once('exit', (code) => reject(new Error(`the host process exited with ${code}`)))
    })
    const pids = JSON.parse(line ?? '{}') as { go: number; node: number }
    expect(processExists(pids.go) && processExists(pids.node)).toBe(true)
    hostProcess.kill('SIGKILL')
    await eventually(
      () => !processExists(pids.go) && !processExists(pids.node),
      10_000,
      'both plugins to die with the host',
    )
    rmSync(scratch, { recursive: true, force: true })
  })
})

describe('GrpcBroker.dial', () => {
  it('reaches a service the plugin offers over the broker', async () => {
    const client = await startGoPlugin({
      command: process.execPath,
      args: [join(fixturesDir, 'broker-offer.mjs')],
      handshake: corralHandshake,
      logger: logs.logger,
    })
    try {
      const { target, credentials, options } = await client.broker.dial(7)
      const offered = new Client(target, credentials, options)
      const echoed = await new Promise<Buffer>((resolve, reject) =>
        offered.makeUnaryRequest(
          '/fixture.Echo/Echo',
          (b: Buffer) => b,
          (b: Buffer) => b,
          Buffer.from('over the broker'),
          (error, value) => (error ? reject(error) : resolve(value as Buffer)),
        ),
      )
      offered.close()
      expect(echoed.toString()).toBe('over the broker')
      const missing = await client.broker.dial(8, 200).catch((e: unknown) => e)
      expect(isPluginError(missing) && missing.code).toBe('unavailable')
    } finally {
      await client.stop()
    }
    await eventually(() => !processExists(client.pid as number), 5000, 'the plugin to exit')
  })
})
