import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describeMachine, fmt, formatMedian, formatMet, formatRatio, type Results } from './results.js'

const readme = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../README.md')
const start = '<!-- bench-table:start (written by pnpm bench:readme from bench/results/latest.json) -->'
const end = '<!-- bench-table:end -->'

const cell = (text: string) => text.replaceAll('|', '\\|')

/**
 * Rewrites the figures table of the root README, between its two markers, from `results`: what a
 * whole `pnpm bench` ends with, and what `pnpm bench:readme` does from the last run's files.
 */
export async function writeReadmeTable({ rows, machine }: Results): Promise<void> {
  const table = [
    `Last \`pnpm bench\`: ${describeMachine(machine)}, ${machine.date.slice(0, 10)}. Ratios are the median over rounds, with their min–max.`,
    '',
    '| row | median | ops/s | ratio (min–max) | target | met |',
    '|---|---:|---:|---|---|---|',
    ...rows.map(
      (row) =>
        `| \`${cell(row.name)}\` | ${formatMedian(row)} | ${fmt(row.ops_per_s, 0)} | ${formatRatio(row)} | ${cell(row.target ?? '')} | ${formatMet(row)} |`,
    ),
  ].join('\n')

  const text = await readFile(readme, 'utf8')
  const from = text.indexOf(start)
  const to = text.indexOf(end)
  if (from === -1 || to < from) throw new Error(`README.md has no section between ${start} and ${end}`)
  await writeFile(readme, `${text.slice(0, from + start.length)}\n${table}\n${text.slice(to)}`)
  console.log(`README.md: ${rows.length} rows of ${machine.date}`)
}
