import { type FieldError, isPluginErrorCode, logLevels } from '@corral/types'
import { createWasiImports } from '../../worker/wasi.js'
import type { GuestFactory, GuestInstance, GuestOptions } from '../guest-abi.js'
import { GuestCallError, type GuestMemoryCap, guestFailure, memoryCapFailure } from '../guest-abi.js'
import { wasiModuleName } from '../wasi-names.js'
import { assemblyScriptAbort } from './assemblyscript-abort.js'
import { abortImportModule, corralAbiVersion, corralImportModule } from './corral-abi.js'

type ExportFn = (ptr: number, len: number) => bigint

const decoder = new TextDecoder()

/**
 * Reads a guest error payload: `{"code", "message"}` JSON gets the plugin's prefix, except
 * `invalid_argument` (the call's arguments were wrong: Corral's code, with the `fields` the guest
 * names); anything else is text.
 */
export function guestError(plugin: string, bytes: Uint8Array): GuestCallError {
  const text = decoder.decode(bytes)
  try {
    const parsed: unknown = JSON.parse(text)
    if (typeof parsed === 'object' && parsed !== null) {
      const { code, message, fields } = parsed as { code?: unknown; message?: unknown; fields?: unknown }
      const said = typeof message === 'string' ? message : ''
      if (code === 'invalid_argument') return new GuestCallError(code, said, false, fieldErrors(fields))
      const prefixed = `${plugin}:${String(code)}`
      if (typeof code === 'string' && isPluginErrorCode(prefixed)) {
        return new GuestCallError(prefixed as `${string}:${string}`, said, false)
      }
    }
  } catch {
    // not JSON: plain text
  }
  return new GuestCallError('plugin_error', text, false)
}

/** The `[{"field", "message"}]` a guest named, those well formed (at most 100). */
function fieldErrors(value: unknown): FieldError[] | undefined {
  if (!Array.isArray(value)) return undefined
  const fields = value
    .filter(
      (f): f is FieldError =>
        typeof f === 'object' && f !== null && typeof f.field === 'string' && typeof f.message === 'string',
    )
    .slice(0, 100)
    .map(({ field, message }) => ({ field, message }))
  return fields.length > 0 ? fields : undefined
}

/**
 * Corral ABI v1, guest side (inside the worker): instantiates the module with the `corral` host
 * imports (and WASI when it asks for it), runs `_initialize`, checks `corral_abi_version`, and
 * calls exports by the calling convention of ABI.md.
 */
export const createCorralGuest: GuestFactory = async (options: GuestOptions): Promise<GuestInstance> => {
  const { plugin, bridge, maxOutputBytes } = options
  let memory: WebAssembly.Memory | undefined
  let memoryBytes = new Uint8Array(0)
  let alloc: (size: number) => number = () => 0
  let callError: GuestCallError | undefined

  /** The guest's memory as bytes, refreshed after `memory.grow` replaced its buffer. */
  const mem = (): Uint8Array => {
    const buffer = (memory as WebAssembly.Memory).buffer
    if (memoryBytes.buffer !== buffer) memoryBytes = new Uint8Array(buffer)
    return memoryBytes
  }
  /**
   * A region the guest named; out of bounds is a trap. Pointers and lengths are wasm32 `i32`s, which
   * reach JavaScript signed: read them as unsigned (`>>> 0`), or an address at or above 2 GiB (a
   * grant above 2048 MiB) would turn negative.
   */
  const region = (signedPtr: number, signedLen: number, what: string): Uint8Array => {
    const bytes = mem()
    const ptr = signedPtr >>> 0
    const len = signedLen >>> 0
    if (ptr + len > bytes.length) {
      throw new GuestCallError('plugin_trap', `${what} [${ptr}, +${len}) is outside guest memory`, true)
    }
    return bytes.subarray(ptr, ptr + len)
  }
  /** Copies `data` into memory the guest allocates; 0 when it cannot. */
  const handOver = (data: Uint8Array): number => {
    const ptr = alloc(data.length) >>> 0
    if (ptr === 0) return 0
    region(ptr, data.length, 'corral_alloc result').set(data)
    return ptr
  }

  const imports: WebAssembly.Imports = {
    [corralImportModule]: {
      host_call(methodPtr: number, methodLen: number, argsPtr: number, argsLen: number): bigint {
        const method = decoder.decode(region(methodPtr, methodLen, 'host_call method'))
        const response = bridge.hostCall(method, region(argsPtr, argsLen, 'host_call args').slice())
        const ptr = handOver(response)
        return ptr === 0 ? 0n : (BigInt(ptr) << 32n) | BigInt(response.length)
      },
      log(level: number, ptr: number, len: number): void {
        bridge.log(
          Math.min(Math.max(level, 0), logLevels.length - 1),
          decoder.decode(region(ptr, len, 'log message')),
        )
      },
      error(ptr: number, len: number): void {
        callError = guestError(plugin, region(ptr, len, 'error message'))
      },
    },
  }
  imports[abortImportModule] = { abort: assemblyScriptAbort(mem) }
  if (options.wasi !== undefined) {
    imports[wasiModuleName] = createWasiImports(
      options.wasi,
      () => memory as WebAssembly.Memory,
      (stream, text) => bridge.log(stream === 1 ? 2 : 3, text.replace(/\n$/, '')),
    )
  }

  let instance: WebAssembly.Instance
  try {
    instance = await WebAssembly.instantiate(options.module, imports)
  } catch (error) {
    throw new GuestCallError('load_failed', `cannot instantiate: ${(error as Error).message}`, true)
  }
  const exports = instance.exports as Record<string, unknown>
  memory = exports.memory as WebAssembly.Memory
  alloc = exports.corral_alloc as (size: number) => number
  const initialize = exports._initialize as (() => void) | undefined
  try {
    initialize?.()
  } catch (error) {
    throw new GuestCallError('load_failed', guestFailure(error, '_initialize').message, true)
  }
  let version: number
  try {
    version = (exports.corral_abi_version as () => number)()
  } catch (error) {
    throw new GuestCallError('load_failed', guestFailure(error, 'corral_abi_version').message, true)
  }
  if (version !== corralAbiVersion) {
    throw new GuestCallError(
      'incompatible',
      `the module implements Corral ABI version ${version}; this host runs version ${corralAbiVersion}`,
      true,
    )
  }
  const cap: GuestMemoryCap = { memory, startBytes: memory.buffer.byteLength, memoryMb: options.memoryMb }

  return {
    call(fn: string, input: Uint8Array): Uint8Array {
      const exported = exports[fn]
      if (typeof exported !== 'function')
        throw new GuestCallError('unimplemented', `no function ${fn}`, false)
      callError = undefined
      let packed: bigint
      try {
        let ptr = 0
        if (input.length > 0) {
          ptr = handOver(input)
          if (ptr === 0) {
            throw new GuestCallError(
              'resource_exhausted',
              `the guest could not allocate ${input.length} bytes of input`,
              true,
            )
          }
        }
        packed = (exported as ExportFn)(ptr, input.length)
      } catch (error) {
        throw memoryCapFailure(error, fn, cap) ?? guestFailure(error, fn)
      }
      if (callError !== undefined) throw callError
      const outPtr = Number(BigInt.asUintN(64, packed) >> 32n)
      const outLen = Number(packed & 0xffffffffn)
      if (outLen > maxOutputBytes) {
        throw new GuestCallError(
          'resource_exhausted',
          `${fn} returned ${outLen} bytes, above the limit of ${maxOutputBytes}`,
          true,
        )
      }
      return outLen === 0 ? new Uint8Array(0) : region(outPtr, outLen, `${fn} output`)
    },
  }
}
