/** Counters of one plugin's calls to one host method. */
export interface MethodMetrics {
  calls: number
  /** Calls that failed, by error code. */
  failures: Record<string, number>
  /** Total time spent in the method, in milliseconds. */
  totalMs: number
}

/** Per plugin, per method: what the sandboxed host API has counted since it was created. */
export type HostCallMetricsSnapshot = Record<string, Record<string, MethodMetrics>>

/** The counters behind `SandboxedHostApi.metrics()`: in memory, per host replica. */
export class HostCallMetrics {
  readonly #byPlugin = new Map<string, Map<string, MethodMetrics>>()

  record(plugin: string, method: string, durationMs: number, failureCode?: string): void {
    let methods = this.#byPlugin.get(plugin)
    if (methods === undefined) {
      methods = new Map()
      this.#byPlugin.set(plugin, methods)
    }
    let metrics = methods.get(method)
    if (metrics === undefined) {
      metrics = { calls: 0, failures: {}, totalMs: 0 }
      methods.set(method, metrics)
    }
    metrics.calls += 1
    metrics.totalMs += durationMs
    if (failureCode !== undefined) metrics.failures[failureCode] = (metrics.failures[failureCode] ?? 0) + 1
  }

  /** A copy of the counters, of one plugin or of all. */
  snapshot(plugin?: string): HostCallMetricsSnapshot {
    const out: HostCallMetricsSnapshot = {}
    for (const [name, methods] of this.#byPlugin) {
      if (plugin !== undefined && name !== plugin) continue
      out[name] = {}
      for (const [method, m] of methods) out[name][method] = { ...m, failures: { ...m.failures } }
    }
    return out
  }
}
