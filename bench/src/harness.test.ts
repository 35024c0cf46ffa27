import { describe, expect, it } from 'vitest'
import { BenchReport, type Measurement } from './harness.js'

/**
 * A measure that returns the given medians (µs) one round after the other, and logs its turns;
 * before them, 1000 µs for the round that counts for nothing.
 */
function scripted(name: string, medians: number[], turns: string[]): () => Promise<Measurement> {
  let round = -1
  return async () => {
    turns.push(name)
    const median = round === -1 ? 1000 : (medians[round] ?? Number.NaN)
    round++
    return { median_us: median, p99_us: median * 2, ops_per_s: 1e6 / median }
  }
}

describe('BenchReport.addInRounds', () => {
  it('measures a row and its baseline in turns, one of each per round, after a round that counts for nothing', async () => {
    const turns: string[] = []
    await new BenchReport().addInRounds(
      [
        { name: 'base', measure: scripted('base', [10, 10, 10], turns) },
        { name: 'row', measure: scripted('row', [12, 12, 12], turns), baseline: 'base' },
      ],
      3,
    )
    expect(turns).toEqual(['base', 'row', 'base', 'row', 'base', 'row', 'base', 'row'])
  })

  it('reports the median ratio of the rounds with its min–max, and the medians of the figures', async () => {
    const turns: string[] = []
    const report = new BenchReport()
    const [base, row] = await report.addInRounds(
      [
        { name: 'base', measure: scripted('base', [10, 20, 10, 40, 10], turns) },
        {
          name: 'row',
          measure: scripted('row', [11, 30, 13, 40, 20], turns),
          baseline: 'base',
          target: { kind: 'max_ratio', value: 1.25 },
        },
      ],
      5,
    )
    // Round ratios 1.1, 1.5, 1.3, 1.0, 2.0: median 1.3, over the 1.25 allowed.
    expect(row).toMatchObject({ baseline: 'base', rounds: 5, ratio_min: 1, ratio_max: 2, met: false })
    expect(row?.ratio).toBeCloseTo(1.3)
    expect(row?.median_us).toBe(20)
    expect(row?.target).toBe('≤ 1.25 × base')
    expect(base).toMatchObject({ median_us: 10, p99_us: 20, baseline: null, ratio: null, met: null })
    expect(report.rows.map((r) => r.name)).toEqual(['base', 'row'])
  })

  it('judges a throughput target on the ratio of ops/s, round by round', async () => {
    const [, row] = await new BenchReport().addInRounds(
      [
        { name: 'base', measure: scripted('base', [10, 10, 10], []) },
        {
          name: 'row',
          // Twice the latency is half the rate: 0.5 in every round.
          measure: scripted('row', [20, 20, 20], []),
          baseline: 'base',
          target: { kind: 'min_ratio', value: 0.5 },
        },
      ],
      3,
    )
    expect(row?.ratio).toBeCloseTo(0.5)
    expect(row?.met).toBe(true)
    expect(row?.target).toBe('≥ 0.5 × base ops/s')
  })

  it('compares a throughput row without a target by ops/s when it says so', async () => {
    const [, row] = await new BenchReport().addInRounds(
      [
        { name: 'base', measure: scripted('base', [10, 10, 10], []) },
        { name: 'row', measure: scripted('row', [40, 40, 40], []), baseline: 'base', byOps: true },
      ],
      3,
    )
    // A quarter of the rate, where latency would say 4.
    expect(row?.ratio).toBeCloseTo(0.25)
    expect(row).toMatchObject({ target: null, met: null })
  })

  it('writes a target ratio with three significant digits at most', async () => {
    const [, row] = await new BenchReport().addInRounds(
      [
        { name: 'base', measure: scripted('base', [60], []) },
        {
          name: 'row',
          // 0.1668: over a sixth, under the 0.167 the target is written as.
          measure: scripted('row', [10.008], []),
          baseline: 'base',
          target: { kind: 'max_ratio', value: 1 / 6 },
        },
      ],
      1,
    )
    expect(row?.target).toBe('≤ 0.167 × base')
    // Judged on the exact sixth, not the rounded one.
    expect(row?.met).toBe(false)
  })

  it('compares a row with another row than the first of its group', async () => {
    const [, call, hostCall] = await new BenchReport().addInRounds(
      [
        { name: 'base', measure: scripted('base', [10], []) },
        { name: 'call', measure: scripted('call', [20], []), baseline: 'base' },
        { name: 'host_call', measure: scripted('host_call', [50], []), baseline: 'call' },
      ],
      1,
    )
    expect(call?.ratio).toBe(2)
    expect(hostCall?.ratio).toBe(2.5)
  })

  it('refuses a baseline that is not in the group, before measuring anything', async () => {
    const turns: string[] = []
    await expect(
      new BenchReport().addInRounds([
        { name: 'row', measure: scripted('row', [1], turns), baseline: 'gone' },
      ]),
    ).rejects.toThrow('bench row row: baseline gone is not in its group')
    expect(turns).toEqual([])
  })

  it('refuses a row name measured twice', async () => {
    const report = new BenchReport()
    report.add('row', { median_us: 1, p99_us: 1, ops_per_s: 1 })
    await expect(report.addInRounds([{ name: 'row', measure: scripted('row', [1], []) }], 1)).rejects.toThrow(
      'bench row row is measured twice',
    )
  })
})

describe('BenchReport.add', () => {
  it('judges a row measured once by its median, with no ratio', () => {
    const row = new BenchReport().add(
      'load',
      { median_us: 12_000, p99_us: 20_000, ops_per_s: 80 },
      {
        kind: 'max_us',
        value: 10_000,
      },
    )
    expect(row).toMatchObject({ rounds: 1, ratio: null, ratio_min: null, met: false, target: '≤ 10000 µs' })
  })
})
