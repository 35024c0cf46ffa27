import { Worker } from 'node:worker_threads'
import { createChannelBuffer } from '../channel/channel.js'
import type { WorkerStartMessage, WorkerWarmUpMessage } from '../channel/worker-messages.js'

/**
 * The worker's file: `worker.js` beside this module once built. Run from the
 * TypeScript sources (the package's own tests), it is the bundle in `dist/`, which the tests'
 * global setup builds before they start.
 */
function workerUrl(): URL {
  const here = import.meta.url
  return new URL(here.endsWith('.ts') ? '../../dist/worker.js' : './worker.js', here)
}

/**
 * The worker's own JavaScript heap stays small: guest memory is outside it (and capped on its
 * own), and the worker only copies bytes between the guest and the channel.
 */
const workerResourceLimits = { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 16, stackSizeMb: 4 }

/**
 * How long after a spare is taken the next one starts. Not at once: a thread starting (first on
 * the host thread, then on its own) beside the instantiation and first calls of the instance just
 * taken slowed them by a third on a 2-core machine (bench row `wasm.load.cached`).
 */
const refillDelayMs = 50

/** A started (or starting) worker and the channel buffer it already holds, its own. */
export interface SpareWorker {
  worker: Worker
  buffer: SharedArrayBuffer
}

/**
 * Keeps one worker started ahead of need. Starting a thread costs tens of milliseconds;
 * with a spare at hand, loading a plugin or replacing a stopped instance costs only the
 * instantiation.
 */
export class SpareWorkers {
  readonly #url = workerUrl()
  #spare: SpareWorker | undefined
  #refillTimer: ReturnType<typeof setTimeout> | undefined
  #closed = false

  /**
   * A started (or starting) worker for the caller to keep, posted `start` before anything else: it
   * instantiates while this thread keeps the books (bench row `wasm.load.cached`). A new spare
   * starts a little later.
   */
  take(start: WorkerStartMessage): SpareWorker {
    const spare = this.#spare ?? this.#spawn()
    spare.worker.postMessage(start)
    this.#spare = undefined
    spare.worker.ref()
    if (!this.#closed && this.#refillTimer === undefined) {
      this.#refillTimer = setTimeout(() => {
        this.#refillTimer = undefined
        if (this.#spare === undefined && !this.#closed) this.#spare = this.#spawn()
      }, refillDelayMs)
      this.#refillTimer.unref()
    }
    return spare
  }

  /**
   * Starts a worker and hands it its channel buffer at once: allocating the buffer, and the first
   * transfer of a SharedArrayBuffer to a thread, cost a load about a millisecond when done on its
   * way (bench row `wasm.load.cached`). The buffer is this worker's alone, never reused.
   */
  #spawn(): SpareWorker {
    // trackUnmanagedFds (Node's default, stated because the sandbox relies on it): the files a guest
    // opens through WASI are closed when its worker exits, even when terminated mid-call.
    const worker = new Worker(this.#url, { resourceLimits: workerResourceLimits, trackUnmanagedFds: true })
    // A spare nobody took must not keep the host alive, nor crash it if it fails to start.
    worker.unref()
    const spare: SpareWorker = { worker, buffer: createChannelBuffer() }
    const onFailure = () => {
      if (this.#spare === spare) this.#spare = undefined
    }
    worker.on('error', onFailure)
    worker.on('exit', onFailure)
    worker.postMessage({ type: 'warm-up', buffer: spare.buffer } satisfies WorkerWarmUpMessage)
    return spare
  }

  /** Stops the spare; {@link SpareWorkers.take} still works after, without keeping a spare. */
  async close(): Promise<void> {
    this.#closed = true
    clearTimeout(this.#refillTimer)
    const spare = this.#spare
    this.#spare = undefined
    await spare?.worker.terminate()
  }
}
