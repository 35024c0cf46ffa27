import { PluginError } from '@corral/types'
import { corralAbiCheck } from '../abi/corral/corral-abi.js'
import { extismAbiCheck } from '../abi/extism/extism-abi.js'
import type { AbiCheck, AbiName, CheckedModule } from '../abi/guest-abi.js'
import { capModuleMemory, readModuleInfo, wasmPageBytes } from '../abi/wasm-binary.js'
import type { ModuleBytes } from './module-files.js'

/** The ABIs the runner recognises, in the order it tries them. */
const abiChecks: AbiCheck[] = [corralAbiCheck, extismAbiCheck]

/** A module checked against its ABI and compiled with its memory capped. */
export interface CompiledModule extends CheckedModule {
  module: WebAssembly.Module
}

/**
 * Checks a module's imports and exports against the ABI it is written for. `abi` names it for a
 * module loaded as an Extism plugin, which may import nothing of Extism's (WASI only, or nothing);
 * `hostFunctions` names (`module.name`) the user host functions the host declared for it.
 */
export function checkModule(
  bytes: Uint8Array,
  abi?: AbiName,
  hostFunctions?: ReadonlySet<string>,
): CheckedModule {
  const info = readModuleInfo(bytes)
  if (abi !== undefined)
    return (abiChecks.find((check) => check.name === abi) as AbiCheck).check(info, hostFunctions)
  const recognized = abiChecks.find((check) => check.recognizes(info))
  if (recognized === undefined) {
    throw new PluginError(
      'load_failed',
      'not a Corral ABI v1 module (missing export corral_abi_version) nor an Extism plugin (no extism:host/env import)',
    )
  }
  return recognized.check(info, hostFunctions)
}

/**
 * Compiled modules by content: the SHA-256 of the bytes and the memory cap. Loading the same plugin
 * again (a reload, a second host using the same runner) skips checking and compiling. Bounded: the
 * oldest entry goes when it is full.
 */
export class ModuleCache {
  readonly #entries = new Map<string, Promise<CompiledModule>>()
  readonly #capacity: number

  constructor(capacity = 64) {
    this.#capacity = capacity
  }

  /**
   * The compiled module for `module` with memory capped at `memoryMb`, compiling it on a miss; `abi`
   * as {@link checkModule} takes it.
   */
  get(
    { bytes, digest }: ModuleBytes,
    memoryMb: number,
    abi?: AbiName,
    hostFunctions?: ReadonlySet<string>,
  ): Promise<CompiledModule> {
    const maxPages = Math.floor((memoryMb * 1024 * 1024) / wasmPageBytes)
    const declared = hostFunctions === undefined ? '' : [...hostFunctions].sort().join(',')
    const key = `${digest}:${maxPages}:${abi ?? ''}:${declared}`
    const hit = this.#entries.get(key)
    if (hit !== undefined) {
      // Most recently used goes last.
      this.#entries.delete(key)
      this.#entries.set(key, hit)
      return hit
    }
    const compiled = compile(bytes, maxPages, abi, hostFunctions)
    this.#entries.set(key, compiled)
    compiled.catch(() => this.#entries.delete(key))
    while (this.#entries.size > this.#capacity) {
      const oldest = this.#entries.keys().next().value as string
      this.#entries.delete(oldest)
    }
    return compiled
  }

  /** Drops every entry. */
  clear(): void {
    this.#entries.clear()
  }
}

async function compile(
  bytes: Uint8Array,
  maxPages: number,
  abi?: AbiName,
  hostFunctions?: ReadonlySet<string>,
): Promise<CompiledModule> {
  const checked = checkModule(bytes, abi, hostFunctions)
  const capped = capModuleMemory(bytes, maxPages)
  try {
    return { ...checked, module: await WebAssembly.compile(capped as Uint8Array<ArrayBuffer>) }
  } catch (error) {
    throw new PluginError('load_failed', `the module does not compile: ${(error as Error).message}`, {
      cause: error,
    })
  }
}
