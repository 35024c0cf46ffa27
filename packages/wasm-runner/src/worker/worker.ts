/**
 * The worker thread's entry: one instance of the plugin's module per worker. It waits for its start message,
 * instantiates the guest through its ABI's factory, reports `ready`, then serves calls from the
 * shared-memory channel forever, blocking between them. The host stops it by terminating the
 * thread, which is what makes a timeout stop a guest that never returns.
 */
import { type MessagePort, parentPort } from 'node:worker_threads'
import { logLevels } from '@corral/types'
import { createCorralGuest } from '../abi/corral/corral-guest.js'
import { createExtismGuest } from '../abi/extism/extism-guest.js'
import type { AbiName, GuestFactory, GuestInstance, HostBridge } from '../abi/guest-abi.js'
import { GuestCallError, guestFailure } from '../abi/guest-abi.js'
import { MessageKind, WorkerChannelEnd } from '../channel/channel.js'
import type {
  WorkerStartMessage,
  WorkerStatusMessage,
  WorkerWarmUpMessage,
} from '../channel/worker-messages.js'

/** How the worker instantiates a guest of each ABI. */
const guestFactories: Partial<Record<AbiName, GuestFactory>> = {
  corral: createCorralGuest,
  extism: createExtismGuest,
}

const encoder = new TextEncoder()

/** Runs the calls the host queues, in order, until a failure discards the instance. */
function serve(end: WorkerChannelEnd, guest: GuestInstance, plugin: string): never {
  for (;;) {
    const call = end.nextCall()
    let discard = false
    try {
      end.reply(MessageKind.result, 0, guest.call(call.fn, call.input))
    } catch (error) {
      const failure = guestFailure(error, call.fn)
      discard = failure.discard
      const data = encoder.encode(JSON.stringify(failure.toData(plugin)))
      end.reply(MessageKind.failure, discard ? 1 : 0, data)
    }
    end.finish()
    // An instance about to be discarded takes no further call (the host runs them elsewhere): it
    // waits to be terminated.
    if (discard) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0)
  }
}

function bridgeOver(end: WorkerChannelEnd): HostBridge {
  const bridge: HostBridge = {
    hostCall(method, args) {
      const name = encoder.encode(method)
      const payload = new Uint8Array(name.length + args.length)
      payload.set(name)
      payload.set(args, name.length)
      end.send(MessageKind.hostCall, name.length, 0, payload)
      const reply = end.receive()
      if (reply.kind !== MessageKind.hostResult) {
        throw new GuestCallError(
          'internal',
          `host call ${method}: unexpected channel message ${reply.kind}`,
          true,
        )
      }
      return reply.payload
    },
    log(level, message) {
      bridge.hostCall('log', encoder.encode(JSON.stringify({ level: logLevels[level], message })))
    },
  }
  return bridge
}

function workerPort(): MessagePort {
  if (parentPort === null) throw new Error('the worker entry runs in a worker thread')
  return parentPort
}
const port = workerPort()

/** Instantiates the guest `start` names, reports `ready` (or why not), then serves its calls. */
async function startInstance(end: WorkerChannelEnd, start: WorkerStartMessage): Promise<void> {
  let guest: GuestInstance
  try {
    const factory = guestFactories[start.abi]
    if (factory === undefined)
      throw new GuestCallError('load_failed', `no guest support for the ${start.abi} ABI`, true)
    guest = await factory({
      module: start.module,
      plugin: start.plugin,
      bridge: bridgeOver(end),
      maxOutputBytes: start.maxOutputBytes,
      memoryMb: start.memoryMb,
      wasi: start.wasi,
      extism: start.extism,
    })
  } catch (error) {
    const failure = guestFailure(error, 'instantiation')
    port.postMessage({ type: 'failed', error: failure.toData(start.plugin) } satisfies WorkerStatusMessage)
    return
  }
  port.postMessage({ type: 'ready' } satisfies WorkerStatusMessage)
  serve(end, guest, start.plugin)
}

// Two messages, each taken once: the warm-up with the channel, then the start. The warm-up runs the
// listener bookkeeping a start would otherwise run cold, in a new thread, on the load's way.
port.once('message', (warmUp: WorkerWarmUpMessage) => {
  const end = new WorkerChannelEnd(warmUp.buffer)
  port.once('message', (start: WorkerStartMessage) => void startInstance(end, start))
  port.postMessage({ type: 'warmed' } satisfies WorkerStatusMessage)
})
