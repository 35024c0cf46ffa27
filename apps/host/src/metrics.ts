import type { SandboxedHostApi } from '@corral/manager'
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { PluginManager } from './manager-api.js'

/** The host's Prometheus metrics: the manager's per-plugin counters, read at each scrape. */
export interface HostMetrics {
  readonly registry: Registry
  /** Starts timing one route call of `plugin`; the returned function stops it. */
  timeRoute(plugin: string): () => void
  /** The text format Prometheus scrapes. */
  render(): Promise<string>
}

/**
 * Registers the host's metrics. Counters the manager keeps (calls, errors, latency, restarts) and
 * the host API's refusals are copied in when scraped, so they are never counted twice.
 *
 * @example
 * const metrics = createHostMetrics(manager, manager.hostApi)
 * app.get('/metrics', async (_, reply) => reply.type(metrics.registry.contentType).send(await metrics.render()))
 */
export function createHostMetrics(
  manager: Pick<PluginManager, 'list'>,
  hostApi: Pick<SandboxedHostApi, 'metrics'>,
): HostMetrics {
  const registry = new Registry()
  const set = (counter: Counter<string>, labels: Record<string, string>, value: number) =>
    counter.inc(labels, value)
  const fromManager = <T extends Counter<string>>(metric: T, fill: (metric: T) => void) => {
    metric.reset()
    fill(metric)
  }

  new Counter({
    name: 'corral_plugin_calls_total',
    help: 'Calls to a plugin, through the manager.',
    labelNames: ['plugin'],
    registers: [registry],
    collect() {
      fromManager(this, (m) => {
        for (const p of manager.list()) set(m, { plugin: p.name }, p.metrics.calls)
      })
    },
  })
  new Counter({
    name: 'corral_plugin_errors_total',
    help: 'Failed calls to a plugin, by error code.',
    labelNames: ['plugin', 'code'],
    registers: [registry],
    collect() {
      fromManager(this, (m) => {
        for (const p of manager.list())
          for (const [code, n] of Object.entries(p.metrics.errors)) set(m, { plugin: p.name, code }, n ?? 0)
      })
    },
  })
  new Counter({
    name: 'corral_plugin_call_milliseconds_sum',
    help: 'Total time of a plugin’s calls.',
    labelNames: ['plugin'],
    registers: [registry],
    collect() {
      fromManager(this, (m) => {
        for (const p of manager.list()) set(m, { plugin: p.name }, p.metrics.latencyMs.sum)
      })
    },
  })
  new Counter({
    name: 'corral_plugin_restarts_total',
    help: 'Crash restarts of a plugin.',
    labelNames: ['plugin'],
    registers: [registry],
    collect() {
      fromManager(this, (m) => {
        for (const p of manager.list()) set(m, { plugin: p.name }, p.metrics.restarts)
      })
    },
  })
  new Counter({
    name: 'corral_host_call_refusals_total',
    help: 'Host calls refused to a plugin, by method and code.',
    labelNames: ['plugin', 'method', 'code'],
    registers: [registry],
    collect() {
      fromManager(this, (m) => {
        for (const [plugin, methods] of Object.entries(hostApi.metrics()))
          for (const [method, counts] of Object.entries(methods))
            for (const [code, n] of Object.entries(counts.failures)) set(m, { plugin, method, code }, n)
      })
    },
  })
  new Gauge({
    name: 'corral_plugin_in_flight',
    help: 'Calls to a plugin running now.',
    labelNames: ['plugin'],
    registers: [registry],
    collect() {
      this.reset()
      for (const p of manager.list()) this.set({ plugin: p.name }, p.metrics.inFlight)
    },
  })
  const routeSeconds = new Histogram({
    name: 'corral_plugin_route_seconds',
    help: 'Time of a plugin route call, as the HTTP server saw it.',
    labelNames: ['plugin'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  })

  return {
    registry,
    timeRoute: (plugin) => routeSeconds.startTimer({ plugin }),
    render: () => registry.metrics(),
  }
}
