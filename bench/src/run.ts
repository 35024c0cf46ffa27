import { readdir } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { BenchReport, type BenchRow } from './harness.js'
import { writeReadmeTable } from './readme-table.js'
import {
  describeMachine,
  fmt,
  formatMedian,
  formatMet,
  formatRatio,
  thisMachine,
  writeResults,
} from './results.js'

/**
 * `pnpm bench`: runs every suite in `src/suites/` (each default-exports `(report) => Promise<void>`),
 * or only those named on the command line, prints one table and writes `bench/results/latest.json`
 * (the rows) and `machine.json`; a whole run also rewrites the figures table of the root README. It measures; it does not judge: missed targets are printed, and
 * the exit code stays 0.
 */
const here = path.dirname(fileURLToPath(import.meta.url))
const only = process.argv.slice(2)
const suiteFiles = (await readdir(path.join(here, 'suites')))
  .filter((f) => /\.ts$/.test(f) && !f.endsWith('.d.ts'))
  .filter((f) => only.length === 0 || only.includes(path.basename(f, '.ts')))
  .sort()

const machine = thisMachine()
console.log(`machine: ${describeMachine(machine)}`)
const report = new BenchReport()
for (const file of suiteFiles) {
  const started = performance.now()
  const suite = (await import(path.join(here, 'suites', file))) as {
    default: (r: BenchReport) => Promise<void>
  }
  await suite.default(report)
  // A whole run must stay within its budget (docs/performance.md): each suite says what it took.
  console.error(`bench: ${file} took ${((performance.now() - started) / 1000).toFixed(0)} s`)
}

/** The printed table: a negative width pads on the right (text), a positive one on the left (numbers). */
const columns: Array<{ title: string; width: number; cell: (row: BenchRow) => string }> = [
  { title: 'row', width: -38, cell: (row) => row.name },
  { title: 'median', width: 12, cell: formatMedian },
  { title: 'p99 µs', width: 10, cell: (row) => fmt(row.p99_us) },
  { title: 'ops/s', width: 9, cell: (row) => fmt(row.ops_per_s, 0) },
  { title: 'ratio (min–max)', width: 20, cell: formatRatio },
  { title: 'target', width: 0, cell: (row) => `${row.target ?? ''}  ${formatMet(row)}` },
]
const pad = (text: string, width: number) => (width < 0 ? text.padEnd(-width) : text.padStart(width))
const line = (cell: (c: (typeof columns)[number]) => string) =>
  columns
    .map((c) => pad(cell(c), c.width))
    .join(' ')
    .trimEnd()
console.log(line((c) => c.title))
for (const row of report.rows) console.log(line((c) => c.cell(row)))
const results = { rows: report.rows, machine }
await writeResults(results)
// Only a whole run speaks for every row.
if (only.length === 0) await writeReadmeTable(results)
