import { PluginError } from '@corral/types'
import type { HostFunctionImport } from './host-function-call.js'
import type { ExtismKernel } from './kernel.js'

/** The module Extism's kernel and host functions are imported from. */
export const extismEnvModule = 'extism:host/env'
/** The module of Extism user host functions; Corral offers `corral_host_call` there. */
export const extismUserModule = 'extism:host/user'

// Wasm i64 values reach JS as BigInt. Handles beyond 2^53 are out of range anyway, so the precision
// Number() loses there changes nothing: such a handle is refused like any other bad one.
const n = (value: bigint): number => Number(value)
const b = (value: number): bigint => BigInt(value)

/**
 * The imports an Extism plugin links against, bound to `kernel`: every function of
 * `extism:host/env` with Extism's signatures (handles are `i64`), and
 * `extism:host/user.corral_host_call(method i64, args i64) -> i64`, and the user host functions
 * `hostFunctions` (declared by the host, run on the host's thread through the kernel).
 *
 * @example
 * const instance = new WebAssembly.Instance(module, extismImports(kernel))
 */
export function extismImports(
  kernel: ExtismKernel,
  hostFunctions: readonly HostFunctionImport[] = [],
): Record<string, Record<string, (...args: never[]) => unknown>> {
  const memory = kernel.memory
  const env = {
    alloc: (size: bigint): bigint => b(memory.alloc(n(size))),
    free: (handle: bigint): void => kernel.free(n(handle)),
    length: (handle: bigint): bigint => b(memory.length(n(handle))),
    length_unsafe: (handle: bigint): bigint => b(memory.length(n(handle))),
    load_u8: (offset: bigint): number => memory.loadU8(n(offset)),
    load_u64: (offset: bigint): bigint => memory.loadU64(n(offset)),
    store_u8: (offset: bigint, value: number): void => memory.storeU8(n(offset), value & 0xff),
    store_u64: (offset: bigint, value: bigint): void => memory.storeU64(n(offset), value),
    input_length: (): bigint => b(kernel.inputLength()),
    input_offset: (): bigint => b(kernel.inputOffset()),
    input_load_u8: (offset: bigint): number => kernel.inputLoadU8(n(offset)),
    input_load_u64: (offset: bigint): bigint => kernel.inputLoadU64(n(offset)),
    output_set: (offset: bigint, length: bigint): void => kernel.outputSet(n(offset), n(length)),
    error_set: (handle: bigint): void => kernel.errorSet(n(handle)),
    error_get: (): bigint => b(kernel.errorGet()),
    config_get: (key: bigint): bigint => b(kernel.configGet(n(key))),
    var_get: (key: bigint): bigint => b(kernel.varGet(n(key))),
    var_set: (key: bigint, value: bigint): void => kernel.varSet(n(key), n(value)),
    http_request: (request: bigint, body: bigint): bigint => b(kernel.httpRequest(n(request), n(body))),
    http_status_code: (): number => kernel.httpStatusCode(),
    http_headers: (): bigint => b(kernel.httpHeaders()),
    log_trace: (handle: bigint): void => kernel.log('trace', n(handle)),
    log_debug: (handle: bigint): void => kernel.log('debug', n(handle)),
    log_info: (handle: bigint): void => kernel.log('info', n(handle)),
    log_warn: (handle: bigint): void => kernel.log('warn', n(handle)),
    log_error: (handle: bigint): void => kernel.log('error', n(handle)),
    get_log_level: (): number => kernel.getLogLevel(),
  }
  const user = {
    corral_host_call: (method: bigint, args: bigint): bigint => b(kernel.corralHostCall(n(method), n(args))),
  }
  const imports: Record<string, Record<string, (...args: never[]) => unknown>> = {
    [extismEnvModule]: env,
    [extismUserModule]: user,
  }
  for (const fn of hostFunctions) {
    imports[fn.module] ??= {}
    ;(imports[fn.module] as Record<string, (...args: unknown[]) => unknown>)[fn.name] = (
      ...args: unknown[]
    ) => kernel.callHostFunction(fn, args)
  }
  return imports
}

/** A function signature: parameter types, result types. */
export type ExtismSignature = readonly [
  params: readonly ('i32' | 'i64')[],
  results: readonly ('i32' | 'i64')[],
]

const handleIn: ExtismSignature = [['i64'], []]
const handleOut: ExtismSignature = [[], ['i64']]
const handleToHandle: ExtismSignature = [['i64'], ['i64']]

/** Every function of `extism:host/env` the kernel provides, with its Extism signature. */
export const extismEnvSignatures: Readonly<Record<string, ExtismSignature>> = {
  alloc: handleToHandle,
  free: handleIn,
  length: handleToHandle,
  length_unsafe: handleToHandle,
  load_u8: [['i64'], ['i32']],
  load_u64: handleToHandle,
  store_u8: [['i64', 'i32'], []],
  store_u64: [['i64', 'i64'], []],
  input_length: handleOut,
  input_offset: handleOut,
  input_load_u8: [['i64'], ['i32']],
  input_load_u64: handleToHandle,
  output_set: [['i64', 'i64'], []],
  error_set: handleIn,
  error_get: handleOut,
  config_get: handleToHandle,
  var_get: handleToHandle,
  var_set: [['i64', 'i64'], []],
  http_request: [['i64', 'i64'], ['i64']],
  http_status_code: [[], ['i32']],
  http_headers: handleOut,
  log_trace: handleIn,
  log_debug: handleIn,
  log_info: handleIn,
  log_warn: handleIn,
  log_error: handleIn,
  get_log_level: [[], ['i32']],
}

/** The signature of `extism:host/user.corral_host_call`. */
export const corralHostCallSignature: ExtismSignature = [['i64', 'i64'], ['i64']]

/** Whether `module` is an Extism plugin: it imports from `extism:host/env`. */
export function isExtismModule(module: WebAssembly.Module): boolean {
  return WebAssembly.Module.imports(module).some((i) => i.module === extismEnvModule)
}

/**
 * Fails with `load_failed`, naming the import, when `module` imports from the Extism modules
 * something the kernel does not provide, nor the host declared in `hostFunctions`. Imports from other modules (WASI) are left to the caller.
 */
export function checkExtismImports(
  module: WebAssembly.Module,
  hostFunctions: readonly HostFunctionImport[] = [],
): void {
  for (const { module: from, name, kind } of WebAssembly.Module.imports(module)) {
    const known =
      (from === extismEnvModule && Object.hasOwn(extismEnvSignatures, name)) ||
      (from === extismUserModule && name === 'corral_host_call') ||
      hostFunctions.some((fn) => fn.module === from && fn.name === name)
    if ((from === extismEnvModule || from === extismUserModule) && (!known || kind !== 'function')) {
      throw new PluginError(
        'load_failed',
        `the Extism kernel does not provide the import ${from}.${name} (${kind})`,
      )
    }
  }
}
