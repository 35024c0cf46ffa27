import type { Plugin, RuntimeState } from '@corral/types'

/** Resolves once `plugin` is in `state` (at once if it is): e.g. restarted after a crash. */
export function reachedState(plugin: Plugin, state: RuntimeState): Promise<void> {
  if (plugin.state === state) return Promise.resolve()
  return new Promise((resolve) => {
    const stop = plugin.onStateChange((change) => {
      if (change.to !== state) return
      stop()
      resolve()
    })
  })
}
