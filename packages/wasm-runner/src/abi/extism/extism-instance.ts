import type { LogLevel } from '@corral/types'
import { isPluginError, PluginError } from '@corral/types'
import type { HostFunctionImport } from './host-function-call.js'
import { checkExtismImports, extismImports } from './import-object.js'
import type { ExtismVarAccess, SyncHostCall } from './kernel.js'
import { ExtismKernel } from './kernel.js'

/** Options of {@link ExtismInstance.create}. */
export interface ExtismInstanceOptions {
  /** The compiled plugin, its memory maximum already capped by the runner. */
  module: WebAssembly.Module
  hostCall: SyncHostCall
  vars: ExtismVarAccess
  /** Imports of other modules the plugin needs, such as `wasi_snapshot_preview1`. */
  otherImports?: WebAssembly.Imports
  /** Called with the instance once it exists, before its runtime starts (WASI binds its memory here). */
  onInstance?: (instance: WebAssembly.Instance) => void
  logLevel?: LogLevel
  /** The cap on the kernel's own memory, in bytes. */
  maxKernelBytes?: number
  /** The largest HTTP response body `http_request` takes. */
  maxHttpResponseBytes?: number
  /** The user host functions the host declared, which the module may import. */
  hostFunctions?: readonly HostFunctionImport[]
}

/**
 * One instance of an Extism plugin with its own kernel: what a worker holds for an Extism module in
 * place of a Corral-ABI instance. Calls are synchronous; the worker around it enforces time.
 *
 * @example
 * const instance = ExtismInstance.create({ module, hostCall, vars: remoteVars(hostCall) })
 * instance.init({ greeting: 'hi' })
 * const output = instance.call('greet', new TextEncoder().encode('Ada'))
 */
export class ExtismInstance {
  readonly kernel: ExtismKernel
  readonly instance: WebAssembly.Instance

  private constructor(kernel: ExtismKernel, instance: WebAssembly.Instance) {
    this.kernel = kernel
    this.instance = instance
  }

  /**
   * Links `module` against a new kernel, instantiates it and starts its language runtime as Extism
   * does (see {@link startGuestRuntime}).
   * Fails with `load_failed` for an import the kernel does not provide or a failing start.
   */
  static create(options: ExtismInstanceOptions): ExtismInstance {
    checkExtismImports(options.module, options.hostFunctions)
    const kernelOptions: ConstructorParameters<typeof ExtismKernel>[0] = {
      hostCall: options.hostCall,
      vars: options.vars,
    }
    if (options.logLevel !== undefined) kernelOptions.logLevel = options.logLevel
    if (options.maxKernelBytes !== undefined) kernelOptions.maxMemoryBytes = options.maxKernelBytes
    if (options.maxHttpResponseBytes !== undefined)
      kernelOptions.maxHttpResponseBytes = options.maxHttpResponseBytes
    const kernel = new ExtismKernel(kernelOptions)
    let instance: WebAssembly.Instance
    try {
      instance = new WebAssembly.Instance(options.module, {
        ...options.otherImports,
        ...extismImports(kernel, options.hostFunctions),
      })
      options.onInstance?.(instance)
      startGuestRuntime(instance.exports)
    } catch (cause) {
      throw isPluginError(cause)
        ? cause
        : new PluginError('load_failed', `the Extism plugin failed to start: ${(cause as Error).message}`, {
            cause,
          })
    }
    return new ExtismInstance(kernel, instance)
  }

  /** Hands the plugin its config: what `config_get` reads from now on. */
  init(config: Record<string, unknown>): void {
    this.kernel.setConfig(config)
  }

  /**
   * Runs export `fn` (`() -> i32`, or no result) with `input` and returns its output. Fails with
   * `unimplemented` when there is no such export, `plugin_error` with the plugin's message on a set
   * error or a non-zero return, `plugin_trap` on a trap (the caller discards the instance), or the
   * code of a host function that failed (`permission_denied` for a refused HTTP host, ...).
   */
  call(fn: string, input: Uint8Array): Uint8Array {
    const exported = Object.hasOwn(this.instance.exports, fn) ? this.instance.exports[fn] : undefined
    if (typeof exported !== 'function') {
      throw new PluginError('unimplemented', `the plugin exports no function ${fn}`)
    }
    this.kernel.beginCall(input)
    let rc: unknown
    try {
      rc = exported()
    } catch (cause) {
      this.kernel.abortCall()
      if (isPluginError(cause)) throw cause
      throw new PluginError('plugin_trap', `${fn} trapped: ${(cause as Error).message}`, { cause })
    }
    return this.kernel.endCall(fn, typeof rc === 'number' ? rc : 0)
  }
}

/**
 * Starts the guest's language runtime once, as Extism does: a Haskell module gets `_initialize`
 * (when it is a reactor) then `hs_init(0, 0)`; any other gets `__wasm_call_ctors`, or failing that
 * `_initialize`.
 */
function startGuestRuntime(exports: WebAssembly.Exports): void {
  const fn = (name: string) => {
    const value = Object.hasOwn(exports, name) ? exports[name] : undefined
    return typeof value === 'function' ? (value as (...args: number[]) => unknown) : undefined
  }
  const hsInit = fn('hs_init')
  if (hsInit !== undefined) {
    fn('_initialize')?.()
    hsInit(0, 0)
    return
  }
  ;(fn('__wasm_call_ctors') ?? fn('_initialize'))?.()
}
