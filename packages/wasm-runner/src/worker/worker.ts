/**
 * The worker thread's entry: one instance of the plugin's module per worker. It waits for its start message,
 * instantiates the guest through its ABI's factory, reports `ready`, then serves calls from the
 * shared-memory channel forever, blocking between them. The host stops it by terminating the
 * thread, which is what makes a timeout stop a guest that never returns.
 */
import { type MessagePort, parentPort } from 'node:worker_threads'
import type { GuestInstance } from '../abi/guest-abi.js'
import { guestFailure } from '../abi/guest-abi.js'
import { WorkerChannelEnd } from '../channel/channel.js'
import type {
  WorkerStartMessage,
  WorkerStatusMessage,
  WorkerWarmUpMessage,
} from '../channel/worker-messages.js'
import { instantiate } from './instantiate.js'
import { serveNextCall } from './serve.js'
import { warmUp } from './warm-up.js'

/** Runs the calls the host queues, in order, until a failure discards the instance. */
function serve(end: WorkerChannelEnd, guest: GuestInstance, plugin: string): never {
  for (;;) {
    // An instance about to be discarded takes no further call (the host runs them elsewhere): it
    // waits to be terminated.
    if (serveNextCall(end, guest, plugin)) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0)
  }
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
    guest = await instantiate(end, start)
  } catch (error) {
    const failure = guestFailure(error, 'instantiation')
    port.postMessage({ type: 'failed', error: failure.toData(start.plugin) } satisfies WorkerStatusMessage)
    return
  }
  port.postMessage({ type: 'ready' } satisfies WorkerStatusMessage)
  serve(end, guest, start.plugin)
}

// The worker warms up (warm-up.ts) as soon as it starts. A start does not wait for it: a spare
// taken the moment it was spawned (a burst of instance starts) starts at once, the warm-up running
// on beside it. A warm-up that failed only leaves the code cold.
void warmUp().catch(() => undefined)

// Two messages, each taken once: the warm-up with the channel, then the start. The warm-up message
// runs the listener bookkeeping a start would otherwise run cold, in a new thread, on the load's way.
port.once('message', (message: WorkerWarmUpMessage) => {
  const end = new WorkerChannelEnd(message.buffer)
  port.once('message', (start: WorkerStartMessage) => void startInstance(end, start))
  port.postMessage({ type: 'warmed' } satisfies WorkerStatusMessage)
})
