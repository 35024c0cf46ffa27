#!/usr/bin/env node
import { createProgram } from './cli-program.js'
import { formatError } from './output.js'

process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  // The reader went away (`corral call … | head -c 20`): the command ends quietly, with the exit
  // code a shell shows for a command SIGPIPE ended (128 + 13), as `cat` or `git log` do.
  if (error.code === 'EPIPE') process.exitCode = 141
  else {
    process.stderr.write(`${formatError(error)}\n`)
    process.exitCode = 1
  }
})

try {
  await createProgram().parseAsync(process.argv)
} catch (error) {
  process.stderr.write(`${formatError(error)}\n`)
  process.exitCode = 1
}
