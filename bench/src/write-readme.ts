import { writeReadmeTable } from './readme-table.js'
import { readResults } from './results.js'

/** `pnpm bench:readme`: the README's figures table from the last run's `bench/results/`, without measuring. */
await writeReadmeTable(await readResults())
