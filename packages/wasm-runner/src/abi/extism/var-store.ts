import type { HostCallContext, HostCallHandler } from '@corral/types'
import { PluginError } from '@corral/types'
import type { ExtismHostFunctions } from './current-plugin.js'
import { runHostFunction } from './current-plugin.js'
import { hostFunctionMethod } from './host-function-call.js'
import type { ExtismVarAccess, SyncHostCall } from './kernel.js'

/** The user host functions of one plugin, and the bound of the kernel memory they work on. */
export interface HostFunctionRoute {
  functions: ExtismHostFunctions
  maxKernelBytes: number
}

/** Extism's own default cap on a plugin's vars. */
export const defaultMaxVarBytes = 1024 * 1024

/** The internal host methods an instance reaches its plugin's vars through. */
const varGetMethod = 'extism.var_get'
const varSetMethod = 'extism.var_set'

const encoder = new TextEncoder()

/**
 * The vars of one Extism plugin, held by the host (the main thread) so that every instance of the
 * plugin's pool sees the same vars, and bounded: keys and values together may not pass `maxBytes`.
 * A `var_set` past the cap fails the guest's call with `resource_exhausted`.
 *
 * @example
 * const vars = new ExtismVarStore({ maxBytes: 64 * 1024 })
 * const hostApi = vars.routeHostCalls(options.hostApi)
 */
export class ExtismVarStore implements ExtismVarAccess {
  readonly maxBytes: number
  readonly #vars = new Map<string, Uint8Array>()
  #bytes = 0

  constructor(options: { maxBytes?: number } = {}) {
    this.maxBytes = options.maxBytes ?? defaultMaxVarBytes
  }

  /** Bytes the vars hold now: keys (UTF-8) and values. */
  get byteLength(): number {
    return this.#bytes
  }

  get(key: string): Uint8Array | undefined {
    return this.#vars.get(key)
  }

  set(key: string, value: Uint8Array | undefined): void {
    const old = this.#vars.get(key)
    const keyBytes = encoder.encode(key).byteLength
    const freed = old === undefined ? 0 : keyBytes + old.byteLength
    if (value === undefined) {
      this.#vars.delete(key)
      this.#bytes -= freed
      return
    }
    const next = this.#bytes - freed + keyBytes + value.byteLength
    if (next > this.maxBytes) {
      throw new PluginError(
        'resource_exhausted',
        `the var store is full: setting ${key} needs ${next} bytes, the cap is ${this.maxBytes}`,
      )
    }
    this.#vars.set(key, value)
    this.#bytes = next
  }

  /**
   * A host-call handler that answers the kernel's var methods from this store and passes every
   * other method on to `hostApi`. Give it to the plugin's instances in place of `hostApi`. A var
   * access is host work like a host call: `hostApi.meter` counts it against the plugin's rate
   * limits first, and a refusal fails it. With `hostFunctions`, the user host function calls of
   * the plugin's guests run here too, with these vars (`host-function-call.ts`).
   */
  routeHostCalls(hostApi: HostCallHandler, hostFunctions?: HostFunctionRoute): HostCallHandler {
    return async (method: string, args: unknown, context: HostCallContext) => {
      if (method === hostFunctionMethod && hostFunctions !== undefined) {
        await hostApi.meter?.(method, context)
        return runHostFunction(hostFunctions.functions, this, args, hostFunctions.maxKernelBytes)
      }
      if (!isVarMethod(method)) return hostApi(method, args, context)
      await hostApi.meter?.(method, context)
      return this.answer(method, args)
    }
  }

  /** Answers one of the kernel's var methods (`extism.var_get`, `extism.var_set`). */
  answer(method: string, args: unknown): unknown {
    const { key, value } = (args ?? {}) as { key?: unknown; value?: unknown }
    if (typeof key !== 'string') throw new PluginError('invalid_argument', `${method} needs a string key`)
    if (method === varGetMethod) {
      const found = this.get(key)
      return { value: found === undefined ? null : Buffer.from(found).toString('base64') }
    }
    if (value !== null && typeof value !== 'string') {
      throw new PluginError('invalid_argument', `${method} needs a base64 value or null`)
    }
    this.set(key, value === null ? undefined : new Uint8Array(Buffer.from(value, 'base64')))
    return {}
  }
}

/** Whether `method` is one of the kernel's var methods, answered by {@link ExtismVarStore.answer}. */
export function isVarMethod(method: string): boolean {
  return method === varGetMethod || method === varSetMethod
}

/**
 * The vars of a plugin as an instance in a worker sees them: every access is a synchronous host
 * call to the plugin's {@link ExtismVarStore} on the main thread.
 */
export function remoteVars(hostCall: SyncHostCall): ExtismVarAccess {
  return {
    get(key) {
      const { value } = hostCall(varGetMethod, { key }) as { value: string | null }
      return value === null ? undefined : new Uint8Array(Buffer.from(value, 'base64'))
    },
    set(key, value) {
      hostCall(varSetMethod, {
        key,
        value: value === undefined ? null : Buffer.from(value).toString('base64'),
      })
    },
  }
}
