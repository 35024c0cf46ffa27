import type { LogLevel } from '@corral/types'
import { logLevels, PluginError } from '@corral/types'
import type { HostFunctionCallResult, HostFunctionImport } from './host-function-call.js'
import {
  decodeMemory,
  decodeValue,
  encodeMemory,
  encodeValue,
  hostFunctionMethod,
} from './host-function-call.js'
import { KernelMemory } from './kernel-memory.js'

/**
 * Calls a Corral host API method synchronously for the guest: returns the method's result or throws
 * a {@link PluginError}. In a worker it blocks on the host's answer; in a test it can be a plain
 * function.
 */
export type SyncHostCall = (method: string, args: unknown) => unknown

/**
 * Where an Extism plugin's vars live. They belong to the plugin, not to one instance: every
 * instance of a pool sees the same vars (see `ExtismVarStore`).
 */
export interface ExtismVarAccess {
  get(key: string): Uint8Array | undefined
  /** Sets a var, or deletes it when `value` is `undefined`; throws `resource_exhausted` past the cap. */
  set(key: string, value: Uint8Array | undefined): void
}

/** Options of {@link ExtismKernel}. */
export interface ExtismKernelOptions {
  /** The Corral host API: `http.request` and `log` go through it, and so does `corral_host_call`. */
  hostCall: SyncHostCall
  vars: ExtismVarAccess
  /** What `config_get` reads; values that are not strings are given as JSON text. */
  config?: Record<string, unknown>
  /** Messages below this level are dropped in the guest's thread; `get_log_level` reports it. Default `info`. */
  logLevel?: LogLevel
  /** The most the kernel memory may grow to, in bytes; an `alloc` past it returns `0`. Default 64 MiB. */
  maxMemoryBytes?: number
  /** The largest HTTP response body `http_request` takes; a larger one fails the call. Default 50 MiB. */
  maxHttpResponseBytes?: number
}

/** Extism's default `max_http_response_bytes`: 50 MiB. */
export const defaultMaxHttpResponseBytes = 50 * 1024 * 1024

/** Host API method names no plugin may reach through `corral_host_call`. */
const reservedMethodPrefix = 'extism.'

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/**
 * The Extism kernel for one instance: its own memory of handles, the call's input, output and
 * error, and the host functions of `extism:host/env` (config, vars, HTTP, logs) plus Corral's
 * `corral_host_call`. It knows nothing of workers: {@link extismImports} binds it to a module, and
 * it can run on any thread.
 *
 * Host functions follow Extism's ownership rule: handles passed in are consumed (freed) by the
 * kernel, handles returned belong to the guest. A host function that cannot do its job throws a
 * {@link PluginError}, which unwinds the guest and fails the call.
 *
 * @example
 * const kernel = new ExtismKernel({ hostCall, vars: new ExtismVarStore({ maxBytes: 1 << 20 }) })
 * kernel.beginCall(encoder.encode('hello'))
 * const rc = instance.exports.count_vowels()
 * const output = kernel.endCall('count_vowels', rc)
 */
export class ExtismKernel {
  readonly memory: KernelMemory
  readonly #hostCall: SyncHostCall
  readonly #vars: ExtismVarAccess
  readonly #logLevel: number
  #config: Record<string, unknown>
  #input = 0
  #inputLength = 0
  #outputOffset = 0
  #outputLength = 0
  #error = 0
  #httpStatus = 0
  #httpHeaders: Record<string, string> | undefined
  readonly #maxHttpResponseBytes: number

  constructor(options: ExtismKernelOptions) {
    this.memory = new KernelMemory(options.maxMemoryBytes ?? 64 * 1024 * 1024)
    this.#maxHttpResponseBytes = options.maxHttpResponseBytes ?? defaultMaxHttpResponseBytes
    this.#hostCall = options.hostCall
    this.#vars = options.vars
    this.#config = options.config ?? {}
    this.#logLevel = logLevels.indexOf(options.logLevel ?? 'info')
  }

  /** Replaces what `config_get` reads (the plugin's `init` config). */
  setConfig(config: Record<string, unknown>): void {
    this.#config = config
  }

  /** Starts a call: drops every handle of the last call and stores `input` as this call's input. */
  beginCall(input: Uint8Array): void {
    this.#reset()
    if (input.byteLength === 0) return
    const handle = this.memory.write(input)
    if (handle === 0) {
      throw new PluginError(
        'resource_exhausted',
        `an input of ${input.byteLength} bytes does not fit in kernel memory`,
      )
    }
    this.#input = handle
    this.#inputLength = input.byteLength
  }

  /**
   * Ends a call whose export returned `rc` (`0` for an export without a result): the output, copied
   * out of kernel memory. Fails with `plugin_error` and the plugin's message when the plugin set an
   * error, or when `rc` is not `0`. Kernel memory is released either way.
   */
  endCall(fn: string, rc: number): Uint8Array {
    try {
      const error = this.memory.block(this.#error)
      if (this.#error !== 0 && error !== undefined && error.byteLength > 0) {
        throw new PluginError('plugin_error', decoder.decode(error))
      }
      if (rc !== 0) throw new PluginError('plugin_error', `${fn} returned the non-zero exit code ${rc}`)
      return this.memory.range(this.#outputOffset, this.#outputLength)?.slice() ?? new Uint8Array(0)
    } finally {
      this.#reset()
    }
  }

  /** Ends a call that did not return (a trap, a host function's failure): releases kernel memory. */
  abortCall(): void {
    this.#reset()
  }

  #reset(): void {
    this.memory.reset()
    this.#input = 0
    this.#inputLength = 0
    this.#outputOffset = 0
    this.#outputLength = 0
    this.#error = 0
    this.#httpStatus = 0
    this.#httpHeaders = undefined
  }

  // Input, output and errors.

  inputOffset(): number {
    return this.#input
  }

  inputLength(): number {
    return this.#inputLength
  }

  /** A byte of the input, `0` past its end. */
  inputLoadU8(offset: number): number {
    return offset >= 0 && offset < this.#inputLength ? this.memory.loadU8(this.#input + offset) : 0
  }

  /** Eight bytes of the input (little-endian), `0` when they are not all inside it. */
  inputLoadU64(offset: number): bigint {
    return offset >= 0 && offset + 8 <= this.#inputLength ? this.memory.loadU64(this.#input + offset) : 0n
  }

  /** Frees a block; freeing the input also empties it, as Extism's kernel does. */
  free(handle: number): void {
    this.memory.free(handle)
    if (handle === this.#input && handle !== 0) this.#inputLength = 0
  }

  /** Marks `[offset, offset + length)` as the output; a range outside kernel memory is ignored. */
  outputSet(offset: number, length: number): void {
    if (this.memory.range(offset, length) === undefined) return
    this.#outputOffset = offset
    this.#outputLength = length
  }

  /** Sets (or with `0`, clears) the error message block; anything but a live block is ignored. */
  errorSet(handle: number): void {
    if (handle === 0 || this.memory.length(handle) > 0) this.#error = handle
  }

  errorGet(): number {
    return this.#error
  }

  // Host functions.

  /** The config value of the key in block `keyHandle`, as a new block, or `0` when there is none. */
  configGet(keyHandle: number): number {
    const key = this.#take(keyHandle, 'config key')
    const value = this.#config[key]
    if (value === undefined) return 0
    return this.#give(encoder.encode(typeof value === 'string' ? value : JSON.stringify(value)))
  }

  /** The var named by block `keyHandle`, as a new block, or `0` when it is not set. */
  varGet(keyHandle: number): number {
    const value = this.#vars.get(this.#take(keyHandle, 'var key'))
    return value === undefined ? 0 : this.#give(value)
  }

  /** Sets the var named by `keyHandle` to block `valueHandle`; `valueHandle` `0` deletes it. */
  varSet(keyHandle: number, valueHandle: number): void {
    const key = this.#take(keyHandle, 'var key')
    if (valueHandle === 0) {
      this.#vars.set(key, undefined)
      return
    }
    const value = this.memory.block(valueHandle)
    if (value === undefined) throw invalidHandle('var value', valueHandle)
    const copy = value.slice()
    this.free(valueHandle)
    this.#vars.set(key, copy)
  }

  /**
   * Makes the HTTP request described by the JSON in `requestHandle` (`{url, method?, headers?}`),
   * with the body in `bodyHandle` (`0`: none), through the host's `http.request`, so the plugin's
   * `http` grant decides. Returns the response body as a new block (`0` when empty). A refused or
   * failed request fails the call, as it does under Extism.
   */
  httpRequest(requestHandle: number, bodyHandle: number): number {
    const request = parseHttpRequest(this.#take(requestHandle, 'HTTP request'))
    let body: string | undefined
    if (bodyHandle !== 0) {
      const bytes = this.memory.block(bodyHandle)
      if (bytes === undefined) throw invalidHandle('HTTP request body', bodyHandle)
      body = Buffer.from(bytes).toString('base64')
      this.free(bodyHandle)
    }
    this.#httpStatus = 0
    this.#httpHeaders = undefined
    const args: Record<string, unknown> = {
      method: request.method,
      url: request.url,
      headers: request.headers,
    }
    if (body !== undefined) args.body = body
    const response = this.#hostCall('http.request', args) as {
      status: number
      headers?: Record<string, string>
      body?: string
    }
    this.#httpStatus = response.status
    this.#httpHeaders = response.headers ?? {}
    const responseBody = Buffer.from(response.body ?? '', 'base64')
    if (responseBody.byteLength > this.#maxHttpResponseBytes) {
      throw new PluginError(
        'resource_exhausted',
        `the HTTP response body is ${responseBody.byteLength} bytes, above max_http_response_bytes ${this.#maxHttpResponseBytes}`,
      )
    }
    return responseBody.byteLength === 0 ? 0 : this.#give(responseBody)
  }

  /** The status of this call's last HTTP response, `0` before any. */
  httpStatusCode(): number {
    return this.#httpStatus
  }

  /** The headers of this call's last HTTP response as a JSON object in a new block, `0` before any. */
  httpHeaders(): number {
    return this.#httpHeaders === undefined ? 0 : this.#give(encoder.encode(JSON.stringify(this.#httpHeaders)))
  }

  /** Sends the text in `handle` to the plugin's log at `level`, unless the level is filtered out. */
  log(level: LogLevel, handle: number): void {
    if (logLevels.indexOf(level) < this.#logLevel) {
      // Filtered out: the handle is still consumed, but the message is never read.
      this.free(handle)
      return
    }
    const message = this.#take(handle, 'log message')
    try {
      this.#hostCall('log', { level, message })
    } catch {
      // A log line that the host refuses (rate cap) is dropped; it does not fail the call.
    }
  }

  /** The lowest level that is logged: 0 trace … 4 error. */
  getLogLevel(): number {
    return this.#logLevel
  }

  /**
   * Calls Corral host method named in `methodHandle` with the JSON arguments in `argsHandle` (`0`:
   * none). Returns a new block holding `{"ok": result}` or `{"error": {"code", "message"}}`, as the
   * Corral ABI's `host_call` does; `0` when kernel memory is full.
   */
  corralHostCall(methodHandle: number, argsHandle: number): number {
    const method = this.#take(methodHandle, 'host method')
    const argsText = argsHandle === 0 ? '{}' : this.#take(argsHandle, 'host call arguments')
    let response: unknown
    try {
      if (method.startsWith(reservedMethodPrefix)) {
        throw new PluginError('unimplemented', `host method ${method} is not available`)
      }
      let args: unknown
      try {
        args = JSON.parse(argsText)
      } catch {
        throw new PluginError('invalid_argument', `the arguments of ${method} are not JSON`)
      }
      response = { ok: this.#hostCall(method, args) ?? null }
    } catch (cause) {
      const error = PluginError.from(cause)
      response = { error: { code: error.code, message: error.rawMessage } }
    }
    return this.memory.write(encoder.encode(JSON.stringify(response)))
  }

  /**
   * Calls the user host function `fn` with the guest's `args`: the kernel memory goes to the host
   * with the call and comes back as the function left it (see `host-function-call.ts`). Returns
   * what the guest gets: nothing, or its one result.
   */
  callHostFunction(fn: HostFunctionImport, args: unknown[]): number | bigint | undefined {
    const answer = this.#hostCall(hostFunctionMethod, {
      module: fn.module,
      name: fn.name,
      args: args.map(encodeValue),
      memory: encodeMemory(this.memory.snapshot()),
    }) as HostFunctionCallResult
    this.memory.restore(decodeMemory(answer.memory))
    const [type] = fn.results
    return type === undefined ? undefined : decodeValue(answer.results[0], type)
  }

  /** Reads the text of block `handle` and frees it: the guest handed it over. */
  #take(handle: number, what: string): string {
    const bytes = this.memory.block(handle)
    if (bytes === undefined) throw invalidHandle(what, handle)
    const text = decoder.decode(bytes)
    this.free(handle)
    return text
  }

  /** Copies `bytes` into a new block for the guest; fails the call when kernel memory is full. */
  #give(bytes: Uint8Array): number {
    const handle = this.memory.write(bytes)
    if (handle === 0) {
      throw new PluginError('resource_exhausted', `kernel memory cannot hold ${bytes.byteLength} more bytes`)
    }
    return handle
  }
}

function invalidHandle(what: string, handle: number): PluginError {
  return new PluginError('invalid_argument', `${what}: ${handle} is not a live kernel memory handle`)
}

interface ExtismHttpRequest {
  url: string
  method: string
  headers: Record<string, string>
}

function parseHttpRequest(text: string): ExtismHttpRequest {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw new PluginError('invalid_argument', 'the HTTP request is not JSON')
  }
  const { url, method, headers } = (value ?? {}) as Record<string, unknown>
  if (typeof url !== 'string') throw new PluginError('invalid_argument', 'the HTTP request has no url')
  if (method !== undefined && method !== null && typeof method !== 'string') {
    throw new PluginError('invalid_argument', 'the HTTP request method must be a string')
  }
  const headerMap: Record<string, string> = {}
  if (headers !== undefined && headers !== null) {
    if (typeof headers !== 'object' || Array.isArray(headers)) {
      throw new PluginError('invalid_argument', 'the HTTP request headers must be an object')
    }
    for (const [name, v] of Object.entries(headers)) headerMap[name] = String(v)
  }
  return { url, method: (method ?? 'GET').toUpperCase(), headers: headerMap }
}
