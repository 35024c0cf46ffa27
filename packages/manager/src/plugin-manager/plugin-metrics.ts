import type { PluginErrorCode } from '@corral/types'
import type { PluginMetrics } from './manager-api.js'

/** Upper bounds of the latency buckets, in ms: roughly ×2.5 steps from a WASM call to a slow one. */
export const latencyBucketsMs: readonly number[] = [1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000]

/**
 * What the manager counts of one plugin's calls, across its reloads: calls, failures by code, a
 * latency histogram, restarts. In-flight calls are counted per loaded version (see `PluginVersion`),
 * and summed here when asked.
 */
export class PluginCallMetrics {
  #calls = 0
  #restarts = 0
  #eventsDropped = 0
  readonly #errors: Partial<Record<PluginErrorCode, number>> = {}
  // One bucket more than bounds: the last one takes what is slower than every bound.
  readonly #counts = new Array<number>(latencyBucketsMs.length + 1).fill(0)
  #sum = 0

  /** Counts one finished call: `code` when it failed. */
  record(latencyMs: number, code?: PluginErrorCode): void {
    this.#calls += 1
    if (code !== undefined) this.#errors[code] = (this.#errors[code] ?? 0) + 1
    let bucket = 0
    while (bucket < latencyBucketsMs.length && latencyMs > (latencyBucketsMs[bucket] as number)) bucket += 1
    this.#counts[bucket] = (this.#counts[bucket] as number) + 1
    this.#sum += latencyMs
  }

  restarted(): void {
    this.#restarts += 1
  }

  eventDropped(): void {
    this.#eventsDropped += 1
  }

  snapshot(inFlight: number): PluginMetrics {
    return {
      calls: this.#calls,
      inFlight,
      errors: { ...this.#errors },
      latencyMs: {
        bounds: [...latencyBucketsMs],
        counts: [...this.#counts],
        sum: this.#sum,
        count: this.#calls,
      },
      restarts: this.#restarts,
      eventsDropped: this.#eventsDropped,
    }
  }
}
