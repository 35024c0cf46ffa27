#!/usr/bin/env node
import { createProgram } from './cli-program.js'
import { formatError } from './output.js'

try {
  await createProgram().parseAsync(process.argv)
} catch (error) {
  process.stderr.write(`${formatError(error)}\n`)
  process.exitCode = 1
}
