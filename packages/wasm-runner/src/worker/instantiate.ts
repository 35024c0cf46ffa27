import { createCorralGuest } from '../abi/corral/corral-guest.js'
import { createExtismGuest } from '../abi/extism/extism-guest.js'
import type { AbiName, GuestFactory, GuestInstance } from '../abi/guest-abi.js'
import { GuestCallError } from '../abi/guest-abi.js'
import type { WorkerChannelEnd } from '../channel/channel.js'
import type { WorkerStartMessage } from '../channel/worker-messages.js'
import { bridgeOver } from './serve.js'

/** How the worker instantiates a guest of each ABI. */
const guestFactories: Partial<Record<AbiName, GuestFactory>> = {
  corral: createCorralGuest,
  extism: createExtismGuest,
}

/**
 * Instantiates the guest `start` names through its ABI's factory, its host calls going over `end`.
 * The warm-up runs it too, so that a load finds it compiled: a function's first call compiles it,
 * and a worker's first call of this one would be on a load's way (bench row `wasm.load.cached`).
 */
export function instantiate(end: WorkerChannelEnd, start: WorkerStartMessage): Promise<GuestInstance> {
  const factory = guestFactories[start.abi]
  if (factory === undefined)
    return Promise.reject(
      new GuestCallError('load_failed', `no guest support for the ${start.abi} ABI`, true),
    )
  return factory({
    module: start.module,
    plugin: start.plugin,
    bridge: bridgeOver(end),
    maxOutputBytes: start.maxOutputBytes,
    memoryMb: start.memoryMb,
    wasi: start.wasi,
    extism: start.extism,
  })
}
