import { performance } from 'node:perf_hooks'

/** A target, as PERFORMANCE.md states it. */
export type Target =
  /** This row's median is at most `value` × the baseline's median. */
  | { kind: 'max_ratio'; value: number }
  /** This row's ops/s is at least `value` × the baseline's ops/s. */
  | { kind: 'min_ratio'; value: number }
  /** This row's median is at most `value` microseconds. */
  | { kind: 'max_us'; value: number }
  /** This row's resident set is at most `value` MB above the baseline's. */
  | { kind: 'max_mb_above'; value: number }

/** One row of the results: what `bench/results/latest.json` holds. */
export interface BenchRow {
  name: string
  median_us: number
  p99_us: number
  ops_per_s: number
  /** The row this one is compared with, measured in the same run. */
  baseline: string | null
  /** median / baseline median for latency targets; ops/s / baseline ops/s for throughput targets. */
  ratio: number | null
  target: string | null
  met: boolean | null
  /** For memory rows: the process's resident set, in MB (the latency fields are then NaN). */
  rss_mb?: number
}

/** What a measurement gives before it becomes a row. */
export interface Measurement {
  median_us: number
  p99_us: number
  ops_per_s: number
}

export interface LatencyOptions {
  /** Measured iterations (after the warm-up). */
  iterations: number
  warmup?: number
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? Number.NaN
}

/** Times `fn` one call at a time: median and p99 latency, and the sequential rate. */
export async function measureLatency(fn: () => unknown, options: LatencyOptions): Promise<Measurement> {
  for (let i = 0; i < (options.warmup ?? Math.ceil(options.iterations / 10)); i++) await fn()
  const samples = new Float64Array(options.iterations)
  const start = performance.now()
  for (let i = 0; i < options.iterations; i++) {
    const t0 = performance.now()
    await fn()
    samples[i] = (performance.now() - t0) * 1000
  }
  const elapsedS = (performance.now() - start) / 1000
  const sorted = [...samples].sort((a, b) => a - b)
  return {
    median_us: percentile(sorted, 0.5),
    p99_us: percentile(sorted, 0.99),
    ops_per_s: options.iterations / elapsedS,
  }
}

/**
 * Keeps `inFlight` calls of `fn` running until `total` have completed: throughput, with the
 * latency of each call as seen under that load.
 */
export async function measureThroughput(
  fn: () => Promise<unknown>,
  options: { total: number; inFlight: number; warmup?: number },
): Promise<Measurement> {
  const run = async (count: number, samples: number[]) => {
    let started = 0
    const lane = async () => {
      while (started < count) {
        started++
        const t0 = performance.now()
        await fn()
        samples.push((performance.now() - t0) * 1000)
      }
    }
    await Promise.all(Array.from({ length: options.inFlight }, lane))
  }
  await run(options.warmup ?? Math.ceil(options.total / 10), [])
  const samples: number[] = []
  const start = performance.now()
  await run(options.total, samples)
  const elapsedS = (performance.now() - start) / 1000
  samples.sort((a, b) => a - b)
  return {
    median_us: percentile(samples, 0.5),
    p99_us: percentile(samples, 0.99),
    ops_per_s: options.total / elapsedS,
  }
}

function describeTarget(target: Target, baseline: string | null): string {
  switch (target.kind) {
    case 'max_ratio':
      return `≤ ${target.value} × ${baseline}`
    case 'min_ratio':
      return `≥ ${target.value} × ${baseline} ops/s`
    case 'max_us':
      return `≤ ${target.value} µs`
    case 'max_mb_above':
      return `≤ ${target.value} MB above ${baseline}`
  }
}

/** Collects rows; a suite adds its baselines first, then the rows compared with them. */
export class BenchReport {
  readonly rows: BenchRow[] = []

  /**
   * Adds a row. With `baseline` (the name of a row added before) and `target`, the ratio is computed
   * and the target judged; a row that misses its target is reported, never thrown.
   */
  add(name: string, m: Measurement, compare?: { baseline?: string; target?: Target }): BenchRow {
    const baselineRow =
      compare?.baseline === undefined ? undefined : this.rows.find((r) => r.name === compare.baseline)
    if (compare?.baseline !== undefined && baselineRow === undefined) {
      throw new Error(`bench row ${name}: baseline ${compare.baseline} was not measured before it`)
    }
    const target = compare?.target
    if (target?.kind === 'max_mb_above') throw new Error(`bench row ${name}: a memory target takes addMemory`)
    let ratio: number | null = null
    let met: boolean | null = null
    if (target !== undefined) {
      if (target.kind === 'max_us') {
        met = m.median_us <= target.value
      } else if (baselineRow !== undefined) {
        ratio =
          target.kind === 'max_ratio'
            ? m.median_us / baselineRow.median_us
            : m.ops_per_s / baselineRow.ops_per_s
        met = target.kind === 'max_ratio' ? ratio <= target.value : ratio >= target.value
      }
    } else if (baselineRow !== undefined) {
      ratio = m.median_us / baselineRow.median_us
    }
    const row: BenchRow = {
      name,
      ...m,
      baseline: baselineRow?.name ?? null,
      ratio,
      target: target === undefined ? null : describeTarget(target, baselineRow?.name ?? null),
      met,
    }
    this.rows.push(row)
    return row
  }

  /** Adds a memory row: `rssMb` resident, judged against `baseline`'s resident set when a target is given. */
  addMemory(name: string, rssMb: number, compare?: { baseline: string; maxAboveMb: number }): BenchRow {
    const baselineRow = compare === undefined ? undefined : this.rows.find((r) => r.name === compare.baseline)
    if (compare !== undefined && baselineRow?.rss_mb === undefined) {
      throw new Error(`bench row ${name}: memory baseline ${compare.baseline} was not measured before it`)
    }
    const above = baselineRow?.rss_mb === undefined ? null : rssMb - baselineRow.rss_mb
    const row: BenchRow = {
      name,
      median_us: Number.NaN,
      p99_us: Number.NaN,
      ops_per_s: Number.NaN,
      baseline: baselineRow?.name ?? null,
      ratio: null,
      target:
        compare === undefined
          ? null
          : describeTarget({ kind: 'max_mb_above', value: compare.maxAboveMb }, compare.baseline),
      met: above === null || compare === undefined ? null : above <= compare.maxAboveMb,
      rss_mb: rssMb,
    }
    this.rows.push(row)
    return row
  }
}
