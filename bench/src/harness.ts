import { performance } from 'node:perf_hooks'

/** A target, as docs/performance.md states it. */
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
  /** For a row measured in rounds, each figure is the median of the rounds' figures. */
  median_us: number
  p99_us: number
  ops_per_s: number
  /** The row this one is compared with, measured in the same rounds. */
  baseline: string | null
  /**
   * The median over rounds of median / baseline median (latency targets, and rows without a
   * target), or of ops/s / baseline ops/s (throughput targets).
   */
  ratio: number | null
  /** The smallest and largest ratio of one round: how much the machine moved under the figure. */
  ratio_min: number | null
  ratio_max: number | null
  /** How many rounds the row was measured in (1 for a row measured once). */
  rounds: number
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

/** The value at fraction `p` of sorted values (NaN when there is none). */
function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? Number.NaN
}

const median = (values: readonly number[]) =>
  percentile(
    [...values].sort((a, b) => a - b),
    0.5,
  )

/** Median and p99 of per-call samples (µs), and the rate of `samples.length` calls in `elapsedS`. */
export function summarize(samples: readonly number[], elapsedS: number): Measurement {
  const sorted = [...samples].sort((a, b) => a - b)
  return {
    median_us: percentile(sorted, 0.5),
    p99_us: percentile(sorted, 0.99),
    ops_per_s: samples.length / elapsedS,
  }
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
  return summarize([...samples], (performance.now() - start) / 1000)
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
  return summarize(samples, (performance.now() - start) / 1000)
}

/** A row measured in rounds with the others of its group. */
export interface RoundRow {
  name: string
  /** One round's measurement of the row (a `measureLatency` or `measureThroughput`, say). */
  measure: () => Promise<Measurement>
  /** The row of the same group this one is compared with, round by round. */
  baseline?: string
  /** Judged on the median ratio over rounds. */
  target?: Extract<Target, { kind: 'max_ratio' | 'min_ratio' }>
  /** Compared by ops/s, as a `min_ratio` target is, for a throughput row without a target. */
  byOps?: boolean
}

/** A ratio as people write it: three significant digits at most (1/6 is 0.167). */
const ratioText = (value: number) => String(Number(value.toPrecision(3)))

function describeTarget(target: Target, baseline: string | null): string {
  switch (target.kind) {
    case 'max_ratio':
      return `≤ ${ratioText(target.value)} × ${baseline}`
    case 'min_ratio':
      return `≥ ${ratioText(target.value)} × ${baseline} ops/s`
    case 'max_us':
      return `≤ ${target.value} µs`
    case 'max_mb_above':
      return `≤ ${target.value} MB above ${baseline}`
  }
}

/** How a row compares with its baseline: the ratio a target speaks of, else ops/s or latency as the row says. */
function ratioOf(row: RoundRow, m: Measurement, base: Measurement): number {
  return row.target?.kind === 'min_ratio' || row.byOps
    ? m.ops_per_s / base.ops_per_s
    : m.median_us / base.median_us
}

/** The comparison fields of a row measured once on its own. */
const noRatio = { baseline: null, ratio: null, ratio_min: null, ratio_max: null, rounds: 1 } as const

/** Rounds a group of rows is measured in, unless said. */
export const defaultRounds = 6

/**
 * Rounds a group runs first, counting for nothing: its first measurements ran this process (and its
 * workers and children) still compiling the code and sizing its heaps, and made a row's min–max a
 * measure of that rather than of the machine.
 */
export const unrecordedRounds = 1

/** Collects rows, in the order they are measured. */
export class BenchReport {
  readonly rows: BenchRow[] = []

  /**
   * Measures `rows` in `rounds` rounds ({@link defaultRounds} unless said); each round measures every row once, in the
   * order given (A, B, A, B, …), so that a row and its baseline see the same machine: a shared
   * machine's load changes within seconds. A row's ratio is computed per round and reported as the median with its
   * min–max; a row that misses its target is reported, never thrown.
   */
  async addInRounds(rows: readonly RoundRow[], rounds = defaultRounds): Promise<BenchRow[]> {
    for (const row of rows) {
      if (row.baseline !== undefined && !rows.some((r) => r.name === row.baseline)) {
        throw new Error(`bench row ${row.name}: baseline ${row.baseline} is not in its group`)
      }
    }
    for (let round = 0; round < unrecordedRounds; round++) for (const row of rows) await row.measure()
    const measured = new Map<string, Measurement[]>(rows.map((r) => [r.name, []]))
    for (let round = 0; round < rounds; round++) {
      for (const row of rows) measured.get(row.name)?.push(await row.measure())
    }
    return rows.map((row) => {
      const own = measured.get(row.name) ?? []
      const base = row.baseline === undefined ? undefined : measured.get(row.baseline)
      const ratios = base === undefined ? [] : own.map((m, i) => ratioOf(row, m, base[i] as Measurement))
      const ratio = ratios.length === 0 ? null : median(ratios)
      const target = row.target
      return this.#push({
        name: row.name,
        median_us: median(own.map((m) => m.median_us)),
        p99_us: median(own.map((m) => m.p99_us)),
        ops_per_s: median(own.map((m) => m.ops_per_s)),
        baseline: row.baseline ?? null,
        ratio,
        ratio_min: ratios.length === 0 ? null : Math.min(...ratios),
        ratio_max: ratios.length === 0 ? null : Math.max(...ratios),
        rounds,
        target: target === undefined ? null : describeTarget(target, row.baseline ?? null),
        met:
          target === undefined || ratio === null
            ? null
            : target.kind === 'max_ratio'
              ? ratio <= target.value
              : ratio >= target.value,
      })
    })
  }

  /** Adds a row measured once, with no baseline: judged by its median when it has a target. */
  add(name: string, m: Measurement, target?: Extract<Target, { kind: 'max_us' }>): BenchRow {
    return this.#push({
      name,
      ...m,
      ...noRatio,
      target: target === undefined ? null : describeTarget(target, null),
      met: target === undefined ? null : m.median_us <= target.value,
    })
  }

  /** Adds a memory row: `rssMb` resident, judged against `baseline`'s resident set when a target is given. */
  addMemory(name: string, rssMb: number, compare?: { baseline: string; maxAboveMb: number }): BenchRow {
    const baselineRow = compare === undefined ? undefined : this.rows.find((r) => r.name === compare.baseline)
    if (compare !== undefined && baselineRow?.rss_mb === undefined) {
      throw new Error(`bench row ${name}: memory baseline ${compare.baseline} was not measured before it`)
    }
    const above = baselineRow?.rss_mb === undefined ? null : rssMb - baselineRow.rss_mb
    return this.#push({
      name,
      median_us: Number.NaN,
      p99_us: Number.NaN,
      ops_per_s: Number.NaN,
      ...noRatio,
      baseline: baselineRow?.name ?? null,
      target:
        compare === undefined
          ? null
          : describeTarget({ kind: 'max_mb_above', value: compare.maxAboveMb }, compare.baseline),
      met: above === null || compare === undefined ? null : above <= compare.maxAboveMb,
      rss_mb: rssMb,
    })
  }

  #push(row: BenchRow): BenchRow {
    if (this.rows.some((r) => r.name === row.name)) throw new Error(`bench row ${row.name} is measured twice`)
    this.rows.push(row)
    return row
  }
}
