import { PluginError } from '@corral/types'
import type { HostFunctionCallArgs, HostFunctionCallResult } from './host-function-call.js'
import { decodeMemory, encodeMemory, encodeValue } from './host-function-call.js'
import type { ExtismVarAccess } from './kernel.js'
import { KernelMemory } from './kernel-memory.js'

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/**
 * Bytes a plugin gave back, as Extism's SDKs hand them over: a read-only `DataView` with `bytes()`,
 * `text()` and `json()`. What `plugin.call` resolves with, and what {@link CurrentPlugin.read} returns.
 */
export class PluginOutput extends DataView<ArrayBuffer> {
  readonly #bytes: Uint8Array<ArrayBuffer>

  /** @param bytes the output, copied. */
  constructor(bytes: Uint8Array) {
    const copy = new Uint8Array(bytes)
    super(copy.buffer, copy.byteOffset, copy.byteLength)
    this.#bytes = copy
  }

  /** The bytes themselves. */
  bytes(): Uint8Array {
    return this.#bytes
  }

  /** The bytes as UTF-8 text. */
  text(): string {
    return decoder.decode(this.#bytes)
  }

  /** The bytes as UTF-8 text (Extism's older name for {@link PluginOutput.text}). */
  string(): string {
    return this.text()
  }

  /** The bytes parsed as JSON; throws a `SyntaxError` when they are not JSON. */
  json(): unknown {
    return JSON.parse(this.text())
  }

  /** A copy of the bytes as an `ArrayBuffer`. */
  arrayBuffer(): ArrayBuffer {
    return this.#bytes.slice().buffer
  }
}

/**
 * What a user host function gets first: the calling plugin's kernel memory and vars, with Extism's
 * `CurrentPlugin` (`CallContext`) methods. Addresses are kernel handles, as the guest passes them
 * (a `bigint` or a number). The memory is the guest's own, carried over with the call: what the
 * function stores there the guest can read once it returns.
 *
 * @example
 * functions: { 'extism:host/user': {
 *   hello(plugin: CurrentPlugin, handle: bigint) {
 *     return plugin.store(`Hello, ${plugin.read(handle)?.text()}!`)
 *   },
 * } }
 */
export class CurrentPlugin {
  readonly #memory: KernelMemory
  readonly #vars: ExtismVarAccess

  /** @internal the host-function dispatcher makes it */
  constructor(memory: KernelMemory, vars: ExtismVarAccess) {
    this.#memory = memory
    this.#vars = vars
  }

  /** The block at `address` (a copy), or `null` when no block starts there. */
  read(address: bigint | number): PluginOutput | null {
    const block = this.#memory.block(Number(address))
    return block === undefined ? null : new PluginOutput(block)
  }

  /** The text of the block at `address`, or `null`. */
  readString(address: bigint | number): string | null {
    return this.read(address)?.text() ?? null
  }

  /** The bytes of the block at `address`, or `null`. */
  readBytes(address: bigint | number): Uint8Array | null {
    return this.read(address)?.bytes() ?? null
  }

  /** Copies `data` (a string as UTF-8) into a new block and returns its address; fails when kernel memory is full. */
  store(data: string | Uint8Array): bigint {
    const bytes = typeof data === 'string' ? encoder.encode(data) : data
    const handle = this.#memory.write(bytes)
    if (handle === 0 && bytes.byteLength > 0) {
      throw new PluginError('resource_exhausted', `kernel memory cannot hold ${bytes.byteLength} more bytes`)
    }
    return BigInt(handle)
  }

  /** A new block of `size` zeroed bytes; `0n` when kernel memory is full. */
  alloc(size: bigint | number): bigint {
    return BigInt(this.#memory.alloc(Number(size)))
  }

  /** Frees the block at `address`. */
  free(address: bigint | number): void {
    this.#memory.free(Number(address))
  }

  /** The length of the block at `address`, `0n` when there is none. */
  length(address: bigint | number): bigint {
    return BigInt(this.#memory.length(Number(address)))
  }

  /** The plugin's var `name`, or `null` when it is not set. */
  getVariable(name: string): PluginOutput | null {
    const value = this.#vars.get(name)
    return value === undefined ? null : new PluginOutput(value)
  }

  /** Sets the plugin's var `name` (bounded by `max_var_bytes`, as the guest's own `var_set`). */
  setVariable(name: string, value: string | Uint8Array): void {
    this.#vars.set(name, typeof value === 'string' ? encoder.encode(value) : value.slice())
  }

  /** Deletes the plugin's var `name`. */
  deleteVariable(name: string): void {
    this.#vars.set(name, undefined)
  }
}

/** A user host function: Extism's shape, sync or async. */
export type ExtismHostFunction = (plugin: CurrentPlugin, ...args: never[]) => unknown

/** User host functions by module (`extism:host/user`, or any other), then by name. */
export type ExtismHostFunctions = Record<string, Record<string, ExtismHostFunction>>

/** The `module.name` of every function in `functions`, as the module check takes them. */
export function hostFunctionNames(functions: ExtismHostFunctions): Set<string> {
  const names = new Set<string>()
  for (const [module, byName] of Object.entries(functions)) {
    for (const name of Object.keys(byName)) names.add(`${module}.${name}`)
  }
  return names
}

/**
 * Runs one user host function call that came from a guest (on the host's thread): restores the
 * guest's kernel memory, runs the function (awaiting it when async) with a {@link CurrentPlugin} over
 * that memory and `vars`, and answers with its result and the memory as it left it. A function that
 * throws fails the guest's call with its message (`plugin_error`, or its own `PluginError` code).
 */
export async function runHostFunction(
  functions: ExtismHostFunctions,
  vars: ExtismVarAccess,
  args: unknown,
  maxKernelBytes: number,
): Promise<HostFunctionCallResult> {
  const call = args as HostFunctionCallArgs
  const fn = Object.hasOwn(functions, call.module) ? functions[call.module]?.[call.name] : undefined
  if (typeof fn !== 'function') {
    throw new PluginError('unimplemented', `no host function ${call.module}.${call.name}`)
  }
  const memory = new KernelMemory(maxKernelBytes)
  memory.restore(decodeMemory(call.memory))
  const plugin = new CurrentPlugin(memory, vars)
  let result: unknown
  try {
    result = await (fn as (plugin: CurrentPlugin, ...args: unknown[]) => unknown)(
      plugin,
      ...call.args.map((value) => (typeof value === 'string' ? BigInt(value) : value)),
    )
  } catch (error) {
    throw PluginError.from(error, 'plugin_error')
  }
  return {
    results: result === undefined || result === null ? [] : [encodeValue(result)],
    memory: encodeMemory(memory.snapshot()),
  }
}
