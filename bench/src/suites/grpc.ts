import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { createGrpcRunner, type GrpcRunner } from '@corral/grpc-runner'
import { defaultPolicy, effectiveGrant, loadManifest } from '@corral/manifest'
import {
  channelSecurity,
  generateCertificate,
  type MtlsMaterial,
  pluginService,
  type ResultBatch,
} from '@corral/proto'
import type { HostCallHandler, Plugin } from '@corral/types'
import { Client, credentials, Metadata } from '@grpc/grpc-js'
import type { BenchReport, Measurement } from '../harness.js'
import { defaultRounds, measureLatency, measureThroughput, summarize, unrecordedRounds } from '../harness.js'

const benchDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '../..')
const examplesDir = path.join(benchDir, '../examples/plugins')
const payload = { text: 'x'.repeat(80), n: 1 }

/**
 * The raw baseline: a grpc-js server in a Node child echoing bytes, unary and on a bidi stream,
 * with no protobuf and no Corral in the way. Run from the bench folder so it finds @grpc/grpc-js.
 * With `BENCH_TLS` (JSON of an {@link MtlsMaterial}) it serves mutual TLS, as a Corral plugin does;
 * given only the peer's certificate, it makes its own at start, as an AutoMTLS plugin does, and
 * prints it after `ready`. With `BENCH_WIRE` it also serves Corral's `PluginService/CallStream` as
 * bare as it can be: each request's JSON arguments parsed and encoded again as its result, in
 * protobuf.js's CallBatch and ResultBatch; no SDK.
 */
const rawServer = `
const grpc = require('@grpc/grpc-js')
const id = (b) => b
const method = (name, stream) => ({ path: '/bench.Echo/' + name, requestStream: stream, responseStream: stream,
  requestSerialize: id, requestDeserialize: id, responseSerialize: id, responseDeserialize: id })
const server = new grpc.Server()
server.addService({ echo: method('Echo', false), stream: method('Stream', true) }, {
  echo: (call, callback) => callback(null, call.request),
  stream: (call) => { call.on('data', (d) => call.write(d)); call.on('end', () => call.end()) },
})
const serveWire = async () => {
  const { callStream } = (await import('@corral/proto')).pluginService
  server.addService({ callStream }, {
    callStream: (call) => {
      call.on('data', (batch) => {
        const results = batch.requests.map((request) => ({
          id: request.id,
          resultJson: Buffer.from(JSON.stringify(JSON.parse(request.argsJson.toString()))),
        }))
        call.write({ results })
      })
      call.on('end', () => call.end())
    },
  })
}
const serve = async () => {
  if (process.env.BENCH_WIRE) await serveWire()
  let tls = process.env.BENCH_TLS ? JSON.parse(process.env.BENCH_TLS) : undefined
  const made = tls && tls.certPem === undefined
  if (made) tls = { ...tls, ...(await (await import('@corral/proto')).generateCertificate()) }
  const security = tls
    ? grpc.ServerCredentials.createSsl(Buffer.from(tls.peerCertPem),
        [{ private_key: Buffer.from(tls.keyPem), cert_chain: Buffer.from(tls.certPem) }], true)
    : grpc.ServerCredentials.createInsecure()
  server.bindAsync('unix:' + process.argv[1], security, (error) => {
    if (error) throw error
    process.stdout.write('ready' + (made ? ' ' + Buffer.from(tls.certPem).toString('base64') : '') + '\\n')
  })
}
serve()
`
const identity = (b: Buffer) => b

/** The raw server on `socket`; `certPem`: the one it made at start, when given only the peer's. */
async function startRawServer(
  socket: string,
  tls?: MtlsMaterial | Pick<MtlsMaterial, 'peerCertPem'>,
  wire = false,
): Promise<{ child: ChildProcess; certPem?: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env }
  if (tls !== undefined) env.BENCH_TLS = JSON.stringify(tls)
  if (wire) env.BENCH_WIRE = '1'
  const child = spawn(process.execPath, ['-e', rawServer, socket], {
    cwd: benchDir,
    stdio: ['ignore', 'pipe', 'inherit'],
    env,
  })
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).once('line', resolve)
    child.once('exit', (code) => reject(new Error(`raw grpc-js server exited with ${code}`)))
  })
  const made = line.split(' ')[1]
  return made === undefined ? { child } : { child, certPem: Buffer.from(made, 'base64').toString() }
}

function rawUnary(client: Client): Promise<unknown> {
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(
      '/bench.Echo/Echo',
      identity,
      identity,
      Buffer.from(JSON.stringify(payload)),
      new Metadata(),
      {},
      (error, value) => (error ? reject(error) : resolve(JSON.parse(String(value)))),
    ),
  )
}

/** Echo calls on one bidi stream; replies come back in order, so a queue pairs them. */
function rawStream(client: Client): { call(): Promise<unknown>; end(): void } {
  const stream = client.makeBidiStreamRequest('/bench.Echo/Stream', identity, identity, new Metadata(), {})
  const waiting: Array<(value: unknown) => void> = []
  stream.on('data', (data: Buffer) => waiting.shift()?.(JSON.parse(String(data))))
  stream.on('error', () => {})
  return {
    call: () =>
      new Promise((resolve) => {
        waiting.push(resolve)
        stream.write(Buffer.from(JSON.stringify(payload)))
      }),
    end: () => stream.end(),
  }
}

/**
 * Echo calls on one `PluginService/CallStream`, one request per batch, as Corral's host sends them
 * (id, function, JSON arguments, timeout, token); the result's JSON is parsed as a call's is.
 */
function wireStream(client: Client): { call(): Promise<unknown>; end(): void } {
  const method = pluginService.callStream
  const stream = client.makeBidiStreamRequest(
    method.path,
    method.requestSerialize,
    method.responseDeserialize,
    new Metadata(),
    {},
  )
  const waiting = new Map<number, (value: unknown) => void>()
  let nextId = 0
  stream.on('data', (batch: ResultBatch) => {
    for (const result of batch.results ?? []) {
      const id = result.id ?? 0
      waiting.get(id)?.(JSON.parse(String(result.resultJson)))
      waiting.delete(id)
    }
  })
  stream.on('error', () => {})
  return {
    call: () =>
      new Promise((resolve) => {
        const id = ++nextId
        waiting.set(id, resolve)
        const argsJson = Buffer.from(JSON.stringify(payload))
        stream.write({
          requests: [{ id, function: 'echo', argsJson, timeoutMs: 2000, token: `bench-${id}` }],
        })
      }),
    end: () => stream.end(),
  }
}

/** Times `start` alone (each run's own cleanup is not timed). */
async function measureStarts(runs: number, start: () => Promise<() => Promise<void>>): Promise<Measurement> {
  const samples: number[] = []
  for (let i = 0; i < runs + 1; i++) {
    const t0 = performance.now()
    const stop = await start()
    const us = (performance.now() - t0) * 1000
    await stop()
    if (i > 0) samples.push(us) // the first run warms caches
  }
  return summarize(samples, samples.reduce((sum, us) => sum + us, 0) / 1e6)
}

type Example = Awaited<ReturnType<typeof example>>

async function example(name: string) {
  const { manifest, dir } = await loadManifest(path.join(examplesDir, name))
  const policy = {
    ...defaultPolicy(manifest.name),
    status: 'approved' as const,
    grants: manifest.resources.permissions,
  }
  return { manifest, dir, grant: effectiveGrant(manifest.resources, policy) }
}

const hostApi: HostCallHandler = async () => ({})

/**
 * A raw grpc-js client of the raw server over mutual TLS (AutoMTLS's certificates, as the runner
 * connects to a plugin), on a unix socket in `dir`; the server serves the bare CallStream too.
 */
async function startTlsEcho(dir: string): Promise<{ server: ChildProcess; client: Client }> {
  const [serverPair, clientPair] = await Promise.all([generateCertificate(), generateCertificate()])
  const socket = path.join(dir, 'echo-tls.sock')
  const { child: server } = await startRawServer(
    socket,
    { peerCertPem: clientPair.certPem, ...serverPair },
    true,
  )
  const { credentials: security, options } = channelSecurity({
    peerCertPem: serverPair.certPem,
    ...clientPair,
  })
  return { server, client: new Client(`unix:${socket}`, security, options) }
}

/**
 * Calls to the hello-grpc example beside raw grpc-js, in rounds: one in flight (against the raw
 * echo over the mutual TLS a Corral plugin's connection has) and 64, and 64 spread over 8 plugin
 * processes; one in flight to the Go example, go-kv (its `widget`, which makes no host call); and
 * hello-grpc's `stats`, which makes one host call.
 */
async function measureCalls(
  report: BenchReport,
  runner: GrpcRunner,
  examples: { hello: Example; goKv: Example },
  dir: string,
): Promise<void> {
  const { hello, goKv } = examples
  const { child: server } = await startRawServer(path.join(dir, 'echo.sock'))
  const client = new Client(`unix:${path.join(dir, 'echo.sock')}`, credentials.createInsecure())
  const stream = rawStream(client)
  const tls = await startTlsEcho(dir)
  const tlsStream = rawStream(tls.client)
  const wire = wireStream(tls.client)
  const plugins: Plugin[] = []
  try {
    for (const example of [goKv, ...Array(9).fill(hello)]) {
      const plugin = await runner.load({ ...example, hostApi })
      plugins.push(plugin)
      await plugin.register()
      await plugin.init({})
    }
    const [go, plugin, ...many] = plugins as [Plugin, Plugin, ...Plugin[]]
    const call = () => plugin.call('echo', payload)
    /** Calls per round of the one-in-flight rows. */
    const latencyCalls = 1_500
    const latency = (fn: () => unknown, iterations: number) => () => measureLatency(fn, { iterations })
    const throughput = (fn: () => Promise<unknown>) => () =>
      measureThroughput(fn, { total: 10_000, inFlight: 64 })
    await report.addInRounds([
      { name: 'grpc.baseline.unary', measure: latency(() => rawUnary(client), 300) },
      { name: 'grpc.baseline.bidi', measure: latency(stream.call, latencyCalls) },
      {
        name: 'grpc.baseline.bidi.tls',
        measure: latency(tlsStream.call, latencyCalls),
        baseline: 'grpc.baseline.bidi',
      },
      {
        name: 'grpc.baseline.wire.tls',
        measure: latency(wire.call, latencyCalls),
        baseline: 'grpc.baseline.bidi.tls',
      },
      {
        name: 'grpc.call',
        measure: latency(call, latencyCalls),
        baseline: 'grpc.baseline.bidi.tls',
        target: { kind: 'max_ratio', value: 1.1 },
      },
      {
        name: 'grpc.call.go',
        measure: latency(() => go.call('widget'), latencyCalls),
        baseline: 'grpc.baseline.bidi.tls',
      },
      {
        name: 'grpc.host_call',
        measure: latency(() => plugin.call('stats'), latencyCalls),
        baseline: 'grpc.call',
      },
    ])
    let next = 0
    // Each call goes to the next plugin process: 8 in flight on each.
    const spread = () => (many[next++ % many.length] as Plugin).call('echo', payload)
    // `plugin` enters the rows below warm: each round above (those unrecorded too) made
    // `latencyCalls` calls on it, and a tenth more to warm up. The other processes get as many each
    // first, unrecorded: else the row would weigh 8 cold JITs against a warm one.
    const callsSoFar = (unrecordedRounds + defaultRounds) * (latencyCalls + Math.ceil(latencyCalls / 10))
    await measureThroughput(spread, { total: many.length * callsSoFar, inFlight: 64, warmup: 0 })
    await report.addInRounds([
      { name: 'grpc.baseline.bidi.64', measure: throughput(stream.call) },
      {
        name: 'grpc.throughput',
        measure: throughput(call),
        baseline: 'grpc.baseline.bidi.64',
        target: { kind: 'min_ratio', value: 2 },
      },
      {
        name: 'grpc.calls.8_plugins',
        measure: throughput(spread),
        baseline: 'grpc.throughput',
        target: { kind: 'min_ratio', value: 0.8 },
      },
    ])
  } finally {
    stream.end()
    tlsStream.end()
    wire.end()
    client.close()
    tls.client.close()
    server.kill()
    tls.server.kill()
    await Promise.all(plugins.map((p) => p.shutdown()))
  }
}

/**
 * The gRPC runner beside raw grpc-js, each row in rounds with its baseline: calls (see
 * `measureCalls`) and a cold start of a TypeScript plugin; and a cold start of the Go example.
 * A Corral plugin's connection always runs mutual TLS (AutoMTLS, as go-plugin's), so the targets
 * compare with raw grpc-js over the same TLS, the plugin making its certificate at start; the
 * plaintext rows show what TLS itself costs.
 */
export default async function grpc(report: BenchReport): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'corral-bench-'))
  const runner = createGrpcRunner({ hostVersion: '0.1.0', logger: { log() {} } })
  try {
    const hello = await example('hello-grpc')
    const goKv = await example('go-kv')
    await measureCalls(report, runner, { hello, goKv }, dir)
    // The host's certificate, made once as a runner makes its own.
    const clientPair = await generateCertificate()
    let run = 0
    await report.addInRounds(
      [
        {
          name: 'grpc.baseline.start',
          measure: () =>
            measureStarts(2, async () => {
              const socket = path.join(dir, `start-${run++}.sock`)
              const { child } = await startRawServer(socket)
              const startClient = new Client(`unix:${socket}`, credentials.createInsecure())
              await rawUnary(startClient)
              return async () => {
                startClient.close()
                child.kill()
              }
            }),
        },
        {
          name: 'grpc.baseline.start.tls',
          measure: () =>
            measureStarts(2, async () => {
              const socket = path.join(dir, `start-${run++}.sock`)
              const { child, certPem } = await startRawServer(socket, { peerCertPem: clientPair.certPem })
              const { credentials: security, options } = channelSecurity({
                peerCertPem: certPem as string,
                ...clientPair,
              })
              const startClient = new Client(`unix:${socket}`, security, options)
              await rawUnary(startClient)
              return async () => {
                startClient.close()
                child.kill()
              }
            }),
          baseline: 'grpc.baseline.start',
        },
        {
          name: 'grpc.start',
          measure: () =>
            measureStarts(2, async () => {
              const started = await runner.load({ ...hello, hostApi })
              await started.register()
              await started.call('echo', payload)
              return () => started.shutdown()
            }),
          baseline: 'grpc.baseline.start.tls',
          target: { kind: 'max_ratio', value: 1.1 },
        },
      ],
      4,
    )
    report.add(
      'grpc.start.go',
      await measureStarts(8, async () => {
        const started = await runner.load({ ...goKv, hostApi })
        await started.register()
        return () => started.shutdown()
      }),
      { kind: 'max_us', value: 20_000 },
    )
  } finally {
    await runner.close()
    rmSync(dir, { recursive: true, force: true })
  }
}
