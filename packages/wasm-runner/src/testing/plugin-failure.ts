import { isPluginError, type PluginError } from '@corral/types'

/** The PluginError `promise` rejects with; throws when it fulfils or rejects with anything else. */
export async function failure(promise: Promise<unknown>): Promise<PluginError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  if (!isPluginError(error)) throw new Error(`expected a PluginError, got ${String(error)}`)
  return error
}
