import { fstatSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  brokerService,
  type CallBatch,
  type CallRequest,
  type CallResult,
  type ConnInfo,
  controllerService,
  corralHandshake,
  encodeErrorJson,
  errorStatus,
  formatHandshakeLine,
  generateCertificate,
  healthService,
  type MtlsMaterial,
  type PeerSecrets,
  parsePeerSecretsLine,
  peerSecretsEnv,
  pluginService,
  type ResultBatch,
  requirePeerSecret,
  resultBatchBytes,
  ServingStatus,
  StdioChannel,
  type StdioData,
  serverOptions,
  serverSecurity,
  stdioService,
} from '@corral/proto'
import { type HealthStatus, PluginError, type PluginErrorData } from '@corral/types'
import {
  Server,
  type ServerDuplexStream,
  type ServerUnaryCall,
  type ServerWritableStream,
  type sendUnaryData,
} from '@grpc/grpc-js'
import type { PluginDefinition } from './define-plugin.js'
import { asBytesFunction } from './define-plugin.js'
import { HostConnection } from './host-client.js'
import { PluginBroker } from './plugin-broker.js'
import { RunningCall } from './running-call.js'

/** Options of {@link serve}. */
export interface ServeOptions {
  /**
   * `unix` (the default) or `tcp` on 127.0.0.1 within `PLUGIN_MIN_PORT`–`PLUGIN_MAX_PORT`; the
   * environment variable `CORRAL_PLUGIN_NETWORK` sets it too.
   */
  network?: 'unix' | 'tcp'
}

/** A plugin being served. */
export interface ServedPlugin {
  /** Where the plugin listens. */
  readonly address: string
  /** Stops serving and exits the process. */
  stop(): Promise<never>
}

const cookieMessage =
  'This binary is a plugin. These are not meant to be executed directly.\n' +
  'Please execute the program that consumes these plugins, which will\n' +
  'load any plugins automatically\n'

/**
 * Serves a plugin the way a go-plugin gRPC plugin serves: checks the magic cookie (with go-plugin's
 * message when run by hand), listens, prints the handshake line, and answers health, broker,
 * controller, stdio and Corral's PluginService until the host stops it or goes away.
 *
 * @example
 * import { definePlugin, serve } from '@corral/plugin-sdk'
 * await serve(definePlugin({ register, functions: { echo: (args) => args } }))
 */
export async function serve(plugin: PluginDefinition, options: ServeOptions = {}): Promise<ServedPlugin> {
  if (process.env[corralHandshake.magicCookieKey] !== corralHandshake.magicCookieValue) {
    process.stderr.write(cookieMessage)
    process.exit(1)
  }
  const clientCert = process.env.PLUGIN_CLIENT_CERT
  let tls: MtlsMaterial | undefined
  if (clientCert !== undefined && clientCert !== '') {
    tls = { peerCertPem: clientCert, ...(await generateCertificate()) }
  }
  const secrets = await readPeerSecrets()
  const broker = new PluginBroker(tls, secrets)
  const host = new HostConnection(broker)
  const runtime = new PluginRuntime(plugin, host)
  const stdio = new StdioForwarder()

  // With TLS only the host's certificate gets in; without it, every call must carry the host's
  // secret: another process that finds the socket is not the host.
  const server = new Server(
    secrets === undefined
      ? serverOptions
      : { ...serverOptions, interceptors: [requirePeerSecret(secrets.host)] },
  )
  server.addService(healthService, {
    check: (_call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<{ status: number }>) =>
      callback(null, { status: ServingStatus.SERVING }),
  })
  server.addService(brokerService, {
    startStream: (stream: ServerDuplexStream<ConnInfo, ConnInfo>) => broker.attach(stream),
  })
  const exit = async (): Promise<never> => {
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        server.forceShutdown()
        resolve()
      }, 2000)
      server.tryShutdown(() => {
        clearTimeout(force)
        resolve()
      })
    })
    host.close()
    process.exit(0)
  }
  server.addService(controllerService, {
    shutdown: (_call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<object>) => {
      callback(null, {})
      setImmediate(() => void exit())
    },
  })
  server.addService(stdioService, {
    streamStdio: (stream: ServerWritableStream<unknown, StdioData>) => stdio.attach(stream),
  })
  server.addService(pluginService, runtime.handlers())

  const network = options.network ?? (process.env.CORRAL_PLUGIN_NETWORK === 'tcp' ? 'tcp' : 'unix')
  const address = network === 'tcp' ? await bindTcp(server, tls) : await bindUnix(server, tls)
  writeSync(
    1,
    formatHandshakeLine({
      appVersion: corralHandshake.protocolVersion,
      network,
      address,
      ...(tls === undefined ? {} : { serverCertPem: tls.certPem }),
    }),
  )
  stdio.capture()
  watchHost(() => void exit())
  return { address, stop: exit }
}

/**
 * The secrets the host hands over on stdin where it runs the plugin without TLS (it says so in
 * `CORRAL_PEER_SECRETS`); undefined where it does not.
 */
async function readPeerSecrets(): Promise<PeerSecrets | undefined> {
  if (process.env[peerSecretsEnv] !== 'stdin') return undefined
  const secrets = parsePeerSecretsLine(await firstStdinLine())
  if (secrets === undefined) {
    process.stderr.write('the host sent no peer secrets on stdin\n')
    process.exit(1)
  }
  return secrets
}

/** The first line of stdin (bounded); the stream is left paused for {@link watchHost}. */
function firstStdinLine(maxBytes = 1024): Promise<string> {
  return new Promise((resolve) => {
    let buffered = ''
    const finish = (line: string) => {
      process.stdin.off('data', onData)
      process.stdin.off('end', onEnd)
      process.stdin.pause()
      resolve(line)
    }
    const onData = (chunk: string) => {
      buffered += chunk
      const newline = buffered.indexOf('\n')
      if (newline !== -1) finish(buffered.slice(0, newline))
      else if (buffered.length > maxBytes) finish('')
    }
    const onEnd = () => finish('')
    process.stdin.setEncoding('utf8')
    process.stdin.on('data', onData)
    process.stdin.on('end', onEnd)
  })
}

function bind(server: Server, address: string, tls: MtlsMaterial | undefined): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync(address, serverSecurity(tls), (error, port) => (error ? reject(error) : resolve(port))),
  )
}

async function bindUnix(server: Server, tls: MtlsMaterial | undefined): Promise<string> {
  const dir = process.env.PLUGIN_UNIX_SOCKET_DIR || tmpdir()
  const path = join(dir, `plugin${process.pid}-${Math.random().toString(36).slice(2, 10)}.sock`)
  await bind(server, `unix:${path}`, tls)
  return path
}

async function bindTcp(server: Server, tls: MtlsMaterial | undefined): Promise<string> {
  const min = Number(process.env.PLUGIN_MIN_PORT || 0)
  const max = Number(process.env.PLUGIN_MAX_PORT || 0)
  if (min === 0 && max === 0) return `127.0.0.1:${await bind(server, '127.0.0.1:0', tls)}`
  for (let port = min; port <= max; port++) {
    try {
      return `127.0.0.1:${await bind(server, `127.0.0.1:${port}`, tls)}`
    } catch {
      // Taken: try the next one.
    }
  }
  throw new Error(`no free port between ${min} and ${max}`)
}

/**
 * The host keeps the plugin's stdin open for as long as it lives: its end means the host is gone
 * (even killed outright), and the plugin must not outlive it.
 */
function watchHost(onGone: () => void): void {
  let stat: ReturnType<typeof fstatSync>
  try {
    stat = fstatSync(0)
  } catch {
    return
  }
  if (process.stdin.isTTY || !(stat.isFIFO() || stat.isSocket())) return
  process.stdin.on('end', onGone)
  process.stdin.on('error', onGone)
  process.stdin.resume()
}

/** The largest piece of stdout or stderr sent as one message. */
const stdioChunkBytes = 64 << 10

/**
 * After the handshake, what the plugin writes to stdout and stderr goes to the host over
 * `plugin.GRPCStdio` while the host listens, and to the pipes otherwise.
 */
class StdioForwarder {
  readonly #streams = new Set<ServerWritableStream<unknown, StdioData>>()

  attach(stream: ServerWritableStream<unknown, StdioData>): void {
    this.#streams.add(stream)
    const drop = () => this.#streams.delete(stream)
    stream.on('cancelled', drop)
    stream.on('error', drop)
    stream.on('close', drop)
  }

  capture(): void {
    for (const [target, channel] of [
      [process.stdout, StdioChannel.STDOUT],
      [process.stderr, StdioChannel.STDERR],
    ] as const) {
      const original = target.write.bind(target)
      target.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
        if (this.#streams.size === 0) return (original as (...args: unknown[]) => boolean)(chunk, ...rest)
        const data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
        // In pieces: the host takes no message above its limit, and a huge write is still output.
        for (let at = 0; at < data.length; at += stdioChunkBytes) {
          const piece = data.subarray(at, at + stdioChunkBytes)
          for (const stream of this.#streams) stream.write({ channel, data: piece })
        }
        const callback = rest.find((arg) => typeof arg === 'function') as (() => void) | undefined
        callback?.()
        return true
      }) as typeof target.write
    }
  }
}

/** Runs the plugin's own code behind PluginService. */
class PluginRuntime {
  readonly #plugin: PluginDefinition
  readonly #host: HostConnection
  #name = ''
  #initialized = false
  #lastError: PluginErrorData | undefined

  constructor(plugin: PluginDefinition, host: HostConnection) {
    this.#plugin = plugin
    this.#host = host
  }

  handlers() {
    return {
      register: (_call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<object>) => {
        this.#unary(callback, async () => {
          const { register } = this.#plugin
          const registration = typeof register === 'function' ? await register() : register
          return { registrationJson: Buffer.from(JSON.stringify(registration)), callStream: true }
        })
      },
      init: (
        call: ServerUnaryCall<
          { configJson?: Uint8Array; hostBrokerId?: number; plugin?: string; token?: string },
          unknown
        >,
        callback: sendUnaryData<object>,
      ) => {
        this.#unary(callback, async () => {
          const request = call.request
          this.#name = request.plugin ?? ''
          this.#host.setBrokerId(request.hostBrokerId ?? 0)
          const config = decodeJson(request.configJson) ?? {}
          await this.#plugin.init?.(config as Record<string, unknown>, {
            plugin: this.#name,
            host: this.#host.bind(request.token ?? '', undefined),
          })
          this.#initialized = true
          return {}
        })
      },
      call: (call: ServerUnaryCall<CallRequest, CallResult>, callback: sendUnaryData<CallResult>) => {
        const running = this.#start(call.request)
        call.on('cancelled', () => running.abort(new PluginError('canceled', 'the host canceled the call')))
        void Promise.resolve(this.#run(call.request, running)).then((result) => callback(null, result))
      },
      callStream: (stream: ServerDuplexStream<CallBatch, ResultBatch>) => this.#serveStream(stream),
      health: (_call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<object>) => {
        this.#unary(callback, async () => {
          const health: HealthStatus = this.#plugin.health
            ? await this.#plugin.health()
            : { ready: this.#initialized, ...(this.#initialized ? {} : { message: 'not initialized' }) }
          const lastError = health.last_error ?? this.#lastError
          return {
            ready: health.ready,
            message: health.message ?? '',
            lastErrorJson: lastError === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(lastError)),
          }
        })
      },
      shutdown: (call: ServerUnaryCall<{ timeoutMs?: number }, unknown>, callback: sendUnaryData<object>) => {
        this.#unary(callback, async () => {
          const work = Promise.resolve(this.#plugin.shutdown?.())
          const timeoutMs = call.request.timeoutMs ?? 0
          if (timeoutMs > 0) {
            let timer: NodeJS.Timeout | undefined
            const limit = new Promise<void>((resolve) => {
              timer = setTimeout(resolve, timeoutMs)
            })
            await Promise.race([work, limit])
            clearTimeout(timer)
          } else {
            await work
          }
          return {}
        })
      },
    }
  }

  /**
   * Serves the host's CallStream: each batch of requests runs at once; results ready by the end of
   * the batch leave as one batch, later ones as a batch per turn of the event loop.
   */
  #serveStream(stream: ServerDuplexStream<CallBatch, ResultBatch>): void {
    const calls = new Map<number, RunningCall>()
    let outbox: CallResult[] = []
    let outboxBytes = 0
    // While a batch is being run, results wait for the flush at its end: no timer for them.
    let inBatch = false
    let scheduled = false
    const flush = () => {
      scheduled = false
      if (outbox.length === 0) return
      const results = outbox
      outbox = []
      outboxBytes = 0
      stream.write({ results })
    }
    const send = (id: number, running: RunningCall, result: CallResult) => {
      calls.delete(id)
      if (running.aborted) return
      // The host refuses a message above max(max_output_bytes, resultBatchBytes): a batch leaves
      // before it would pass resultBatchBytes, so only a result too large on its own is refused.
      const bytes = (result.resultJson?.length ?? 0) + (result.errorJson?.length ?? 0) + 16
      if (outboxBytes > 0 && outboxBytes + bytes > resultBatchBytes) flush()
      outbox.push(result)
      outboxBytes += bytes
      if (inBatch || scheduled) return
      scheduled = true
      setImmediate(flush)
    }
    stream.on('data', (batch: CallBatch) => {
      inBatch = true
      for (const request of batch.requests ?? []) {
        const id = request.id ?? 0
        if (request.cancel) {
          calls.get(id)?.abort(new PluginError('canceled', 'the host canceled the call'))
          continue
        }
        const running = this.#start(request)
        calls.set(id, running)
        const result = this.#run(request, running)
        if (result instanceof Promise) void result.then((done) => send(id, running, done))
        else send(id, running, result)
      }
      inBatch = false
      flush()
    })
    const abortAll = () => {
      for (const running of calls.values())
        running.abort(new PluginError('canceled', 'the call stream ended'))
      calls.clear()
    }
    stream.on('end', () => {
      abortAll()
      stream.end()
    })
    stream.on('error', abortAll)
  }

  #start(request: CallRequest): RunningCall {
    const timeoutMs = request.timeoutMs ?? 0
    return new RunningCall(
      this.#host,
      request.token ?? '',
      timeoutMs > 0 ? Date.now() + timeoutMs : undefined,
    )
  }

  /**
   * Runs one call; never rejects: a failure becomes the result's error. A function that returns a
   * plain value is answered in the same tick (no promise on the way), the common case of a fast call.
   */
  #run(request: CallRequest, running: RunningCall): CallResult | Promise<CallResult> {
    const id = request.id ?? 0
    const name = request.function ?? ''
    const fn = Object.hasOwn(this.#plugin.functions, name) ? this.#plugin.functions[name] : undefined
    let value: unknown
    try {
      if (fn === undefined) throw new PluginError('unimplemented', `no function ${JSON.stringify(name)}`)
      const bytesFn = asBytesFunction(fn)
      if (bytesFn !== undefined) {
        const output = bytesFn(request.argsJson ?? new Uint8Array(0), running)
        return isThenable(output)
          ? Promise.resolve(output).then(
              (bytes) => this.#succeededBytes(id, running, bytes),
              (error: unknown) => this.#failed(id, running, error),
            )
          : this.#succeededBytes(id, running, output)
      }
      let args: unknown
      try {
        args = decodeJson(request.argsJson)
      } catch {
        throw new PluginError('invalid_argument', `the arguments of ${name} are not JSON`)
      }
      value = fn(args, running)
    } catch (error) {
      return this.#failed(id, running, error)
    }
    if (!isThenable(value)) return this.#succeeded(id, running, value)
    return Promise.resolve(value).then(
      (result) => this.#succeeded(id, running, result),
      (error: unknown) => this.#failed(id, running, error),
    )
  }

  #succeeded(id: number, running: RunningCall, result: unknown): CallResult {
    running.finish()
    try {
      return { id, resultJson: Buffer.from(JSON.stringify(result ?? null)) }
    } catch (error) {
      return this.#failed(id, running, error)
    }
  }

  #succeededBytes(id: number, running: RunningCall, output: unknown): CallResult {
    if (!(output instanceof Uint8Array)) {
      return this.#failed(
        id,
        running,
        new PluginError('internal', `a bytesFunction returned ${typeof output}, not a Uint8Array`),
      )
    }
    running.finish()
    return { id, resultJson: output }
  }

  #failed(id: number, running: RunningCall, error: unknown): CallResult {
    running.finish()
    const failure = asPluginError(error)
    this.#lastError = failure.toData()
    return { id, errorJson: encodeErrorJson(failure) }
  }

  #unary<T>(callback: sendUnaryData<T>, work: () => Promise<T>): void {
    work().then(
      (value) => callback(null, value),
      (error: unknown) => {
        const failure = asPluginError(error)
        this.#lastError = failure.toData()
        callback(errorStatus(failure))
      },
    )
  }
}

/** A plugin's own failure without a code is `plugin_error`. */
function asPluginError(error: unknown): PluginError {
  return PluginError.from(error, 'plugin_error')
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === 'function'
}

function decodeJson(bytes: Uint8Array | null | undefined): unknown {
  if (bytes === null || bytes === undefined || bytes.length === 0) return null
  return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'))
}
