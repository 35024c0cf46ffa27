import type { ValueType } from '../wasm-binary.js'
import type { KernelMemorySnapshot } from './kernel-memory.js'

/**
 * The wire format of a user host function call (Extism's `functions` option), both sides of it.
 *
 * The guest runs in a worker; the function runs on the host's thread, where its `CurrentPlugin`
 * must read and write the guest's kernel memory synchronously. So the call carries the kernel's
 * state across: the worker sends the kernel memory with the call (it is small, since it is reset
 * before every guest call, and bounded by `max_pages`), the function works on a copy restored from
 * it, and the answer brings the memory back as the function left it, which the worker restores
 * before the guest goes on. The worker is blocked on the answer meanwhile, so nothing else can
 * change that memory; the host's thread never blocks. This is the existing host-call channel with
 * one reserved method, so the call's deadline, cancellation and `max_host_call_bytes` hold.
 */

/** The reserved host method a user host function call travels as (guests cannot name it). */
export const hostFunctionMethod = 'extism.host_function'

/** One user host function a module imports, with its signature. */
export interface HostFunctionImport {
  module: string
  name: string
  params: readonly ValueType[]
  results: readonly ValueType[]
}

/** A kernel memory snapshot as JSON carries it. */
export interface EncodedKernelMemory {
  bytes: string
  blocks: Array<[number, number, number]>
}

/** The arguments of {@link hostFunctionMethod}. */
export interface HostFunctionCallArgs {
  module: string
  name: string
  /** The guest's arguments: i64 as decimal strings (JSON has no 64-bit integers), others as numbers. */
  args: Array<string | number>
  memory: EncodedKernelMemory
}

/** The answer to {@link hostFunctionMethod}. */
export interface HostFunctionCallResult {
  /** The function's results, encoded as the arguments are. */
  results: Array<string | number>
  memory: EncodedKernelMemory
}

export function encodeMemory(snapshot: KernelMemorySnapshot): EncodedKernelMemory {
  return { bytes: Buffer.from(snapshot.bytes).toString('base64'), blocks: snapshot.blocks }
}

export function decodeMemory(encoded: EncodedKernelMemory): KernelMemorySnapshot {
  return { bytes: new Uint8Array(Buffer.from(encoded.bytes, 'base64')), blocks: encoded.blocks }
}

/** A wasm value as JSON carries it: an i64 (a BigInt in JS) as its decimal text. */
export function encodeValue(value: unknown): string | number {
  return typeof value === 'bigint' ? value.toString() : Number(value)
}

/**
 * A value from JSON as a wasm value of `type`: a BigInt for an i64 (from a string, a number or a
 * BigInt a host function returned), a number otherwise.
 */
export function decodeValue(value: unknown, type: ValueType): number | bigint {
  if (type === 'i64') {
    if (typeof value === 'bigint') return value
    if (typeof value === 'number') return BigInt(Math.trunc(value))
    return BigInt(typeof value === 'string' && value !== '' ? value : 0)
  }
  return Number(value ?? 0)
}
