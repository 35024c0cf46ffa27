import type { PluginClient } from '@corral/types'
import type { ManagerCallOptions } from './manager-api.js'

type CallInto = (fn: string, args: unknown, options: ManagerCallOptions | undefined) => Promise<unknown>

/**
 * A client whose every property is a call of the plugin function of that name. Which functions
 * exist is the definition type's to say: the host does not know them before calling. `then` is
 * no function, so that awaiting a client (or returning it from an async function) does not call one.
 */
export function createPluginClient<Definition extends { functions: object }>(
  callInto: CallInto,
): PluginClient<Definition> {
  const methods = new Map<string, (args: unknown, options?: ManagerCallOptions) => Promise<unknown>>()
  return new Proxy({} as PluginClient<Definition>, {
    get(_target, fn) {
      if (typeof fn !== 'string' || fn === 'then') return undefined
      let method = methods.get(fn)
      if (method === undefined) {
        method = (args, options) => callInto(fn, args, options)
        methods.set(fn, method)
      }
      return method
    },
  })
}
