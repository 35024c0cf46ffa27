import { Worker } from 'node:worker_threads'

/**
 * The instance worker's file: `instance-worker.js` beside this module once built. Run from the
 * TypeScript sources (the package's own tests), it is the bundle in `dist/`, which the tests'
 * global setup builds before they start.
 */
function instanceWorkerUrl(): URL {
  const here = import.meta.url
  return new URL(here.endsWith('.ts') ? '../dist/instance-worker.js' : './instance-worker.js', here)
}

/**
 * The worker's own JavaScript heap stays small: guest memory is outside it (and capped on its
 * own), and the worker only copies bytes between the guest and the channel.
 */
const workerResourceLimits = { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 16, stackSizeMb: 4 }

/**
 * Keeps one instance worker started ahead of need. Starting a thread costs tens of milliseconds;
 * with a spare at hand, loading a plugin or replacing a stopped instance costs only the
 * instantiation.
 */
export class SpareWorkers {
  readonly #url = instanceWorkerUrl()
  #spare: Worker | undefined
  #closed = false

  /** A started (or starting) worker for the caller to keep; a new spare starts behind it. */
  take(): Worker {
    const worker = this.#spare ?? this.#spawn()
    this.#spare = undefined
    worker.ref()
    if (!this.#closed) setImmediate(() => this.#refill())
    return worker
  }

  #refill(): void {
    if (this.#spare === undefined && !this.#closed) this.#spare = this.#spawn()
  }

  #spawn(): Worker {
    const worker = new Worker(this.#url, { resourceLimits: workerResourceLimits })
    // A spare nobody took must not keep the host alive, nor crash it if it fails to start.
    worker.unref()
    const onFailure = () => {
      if (this.#spare === worker) this.#spare = undefined
    }
    worker.on('error', onFailure)
    worker.on('exit', onFailure)
    return worker
  }

  /** Stops the spare; {@link SpareWorkers.take} still works after, without keeping a spare. */
  async close(): Promise<void> {
    this.#closed = true
    const spare = this.#spare
    this.#spare = undefined
    await spare?.terminate()
  }
}
