import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { cpus, loadavg } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { BenchRow } from './harness.js'

/** The machine a run measured on: figures from two machines do not compare. */
export interface Machine {
  cores: number
  cpu: string
  node: string
  /** The 1-minute load average when the run started: how much else the cores were doing. */
  load: number
  /** When the run started (ISO 8601). */
  date: string
}

/** The results of the last run: `latest.json` (the rows) and `machine.json`, in `bench/results/`. */
export interface Results {
  rows: BenchRow[]
  machine: Machine
}

const resultsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'results')

/** This machine, as the top of the table and `machine.json` state it. */
export function thisMachine(): Machine {
  return {
    cores: cpus().length,
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    node: process.version,
    load: loadavg()[0] ?? Number.NaN,
    date: new Date().toISOString(),
  }
}

export function describeMachine(m: Machine): string {
  return `${m.cores} cores, ${m.cpu}, Node ${m.node}, load average ${m.load.toFixed(1)} at the start`
}

export async function writeResults({ rows, machine }: Results): Promise<void> {
  await mkdir(resultsDir, { recursive: true })
  await writeFile(path.join(resultsDir, 'latest.json'), `${JSON.stringify(rows, null, 2)}\n`)
  await writeFile(path.join(resultsDir, 'machine.json'), `${JSON.stringify(machine, null, 2)}\n`)
}

export async function readResults(): Promise<Results> {
  const read = async (file: string) => JSON.parse(await readFile(path.join(resultsDir, file), 'utf8'))
  return { rows: await read('latest.json'), machine: await read('machine.json') }
}

/** A number with `digits` decimals; empty for none. */
export const fmt = (n: number | null, digits = 1) => (n === null || Number.isNaN(n) ? '' : n.toFixed(digits))

/** A row's median: its latency (in ms from 10 ms on), or its resident set for a memory row. */
export function formatMedian(row: BenchRow): string {
  if (row.rss_mb !== undefined) return `${fmt(row.rss_mb)} MB`
  return row.median_us >= 10_000 ? `${fmt(row.median_us / 1000)} ms` : `${fmt(row.median_us)} µs`
}

/** `1.02 (0.97–1.10)`: the median ratio over rounds and its spread. */
export const formatRatio = (row: BenchRow) =>
  row.ratio === null
    ? ''
    : `${fmt(row.ratio, 2)}${row.ratio_min === null ? '' : ` (${fmt(row.ratio_min, 2)}–${fmt(row.ratio_max, 2)})`}`

export const formatMet = (row: BenchRow) => (row.met === null ? '' : row.met ? 'met' : 'MISSED')
