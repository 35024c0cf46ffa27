import { mkdir, readdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { BenchReport, type BenchRow } from './harness.js'

/**
 * `pnpm bench`: runs every suite in `src/suites/` (each default-exports `(report) => Promise<void>`),
 * or only those named on the command line, prints one table and writes `bench/results/latest.json`.
 * It measures; it does not judge: missed targets are printed, and the exit code stays 0.
 */
const here = path.dirname(fileURLToPath(import.meta.url))
const only = process.argv.slice(2)
const suiteFiles = (await readdir(path.join(here, 'suites')))
  .filter((f) => /\.ts$/.test(f) && !f.endsWith('.d.ts'))
  .filter((f) => only.length === 0 || only.includes(path.basename(f, '.ts')))
  .sort()

const report = new BenchReport()
for (const file of suiteFiles) {
  console.error(`bench: ${file}`)
  const suite = (await import(path.join(here, 'suites', file))) as {
    default: (r: BenchReport) => Promise<void>
  }
  await suite.default(report)
}

const fmt = (n: number | null, digits = 1) => (n === null || Number.isNaN(n) ? '' : n.toFixed(digits))
const line = (row: BenchRow) =>
  [
    row.name.padEnd(34),
    (row.rss_mb === undefined ? fmt(row.median_us) : `${fmt(row.rss_mb)} MB`).padStart(10),
    fmt(row.p99_us).padStart(10),
    fmt(row.ops_per_s, 0).padStart(10),
    fmt(row.ratio, 2).padStart(7),
    `${row.target ?? ''}${row.met === false ? '  MISSED' : row.met ? '  met' : ''}`,
  ].join(' ')
console.log(
  [
    'row'.padEnd(34),
    'median µs'.padStart(10),
    'p99 µs'.padStart(10),
    'ops/s'.padStart(10),
    'ratio'.padStart(7),
    'target',
  ].join(' '),
)
for (const row of report.rows) console.log(line(row))

const resultsDir = path.join(here, '..', 'results')
await mkdir(resultsDir, { recursive: true })
await writeFile(path.join(resultsDir, 'latest.json'), `${JSON.stringify(report.rows, null, 2)}\n`)
