import { Worker } from 'node:worker_threads'
import type { WorkerWarmUpMessage } from '../channel/worker-messages.js'

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

/**
 * Keeps one worker started ahead of need. Starting a thread costs tens of milliseconds;
 * with a spare at hand, loading a plugin or replacing a stopped instance costs only the
 * instantiation.
 */
export class SpareWorkers {
  readonly #url = workerUrl()
  #spare: Worker | undefined
  #refillTimer: ReturnType<typeof setTimeout> | undefined
  #closed = false

  /** A started (or starting) worker for the caller to keep; a new spare starts a little later. */
  take(): Worker {
    const worker = this.#spare ?? this.#spawn()
    this.#spare = undefined
    worker.ref()
    if (!this.#closed && this.#refillTimer === undefined) {
      this.#refillTimer = setTimeout(() => {
        this.#refillTimer = undefined
        if (this.#spare === undefined && !this.#closed) this.#spare = this.#spawn()
      }, refillDelayMs)
      this.#refillTimer.unref()
    }
    return worker
  }

  #spawn(): Worker {
    // trackUnmanagedFds (Node's default, stated because the sandbox relies on it): the files a guest
    // opens through WASI are closed when its worker exits, even when terminated mid-call.
    const worker = new Worker(this.#url, { resourceLimits: workerResourceLimits, trackUnmanagedFds: true })
    // A spare nobody took must not keep the host alive, nor crash it if it fails to start.
    worker.unref()
    const onFailure = () => {
      if (this.#spare === worker) this.#spare = undefined
    }
    worker.on('error', onFailure)
    worker.on('exit', onFailure)
    worker.postMessage({ type: 'warm-up' } satisfies WorkerWarmUpMessage)
    return worker
  }

  /** Stops the spare; {@link SpareWorkers.take} still works after, without keeping a spare. */
  async close(): Promise<void> {
    this.#closed = true
    clearTimeout(this.#refillTimer)
    const spare = this.#spare
    this.#spare = undefined
    await spare?.terminate()
  }
}
