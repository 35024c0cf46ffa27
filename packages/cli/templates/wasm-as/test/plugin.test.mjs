// Runs the built plugin through `corral call`: `corral` on the PATH (the `bin` folder of a Corral
// clone), or the CLI script named by CORRAL_CLI.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

const dir = fileURLToPath(new URL('..', import.meta.url))
const corral = (...args) => {
  const [command, prefix] = process.env.CORRAL_CLI
    ? [process.execPath, [process.env.CORRAL_CLI]]
    : ['corral', []]
  const run = spawnSync(command, [...prefix, ...args], { cwd: dir, encoding: 'utf8' })
  if (run.error?.code === 'ENOENT') {
    throw new Error(
      'corral not found: put the bin folder of your Corral clone on the PATH, export PATH="<clone>/bin:$PATH" ' +
        '(see "The corral command" in the clone\'s README.md), or name the CLI script in CORRAL_CLI',
    )
  }
  if (run.error !== undefined) throw run.error
  return run
}

test('greet answers with the greeting', () => {
  const { status, stdout, stderr } = corral('call', '.', 'greet', '--args', '{"name":"Ada"}')
  assert.equal(status, 0, stderr)
  // The message only: a greet that answers more (a count, as the AssemblyScript guide's) passes too.
  assert.equal(JSON.parse(stdout).message, 'Hello, Ada!')
})

test('greet with an empty name fails with its own code', () => {
  const { status, stderr } = corral('call', '.', 'greet', '--args', '{"name":""}')
  assert.equal(status, 1)
  assert.match(stderr, /missing_name/)
})

test('greet without a name is refused with invalid_argument naming the field', () => {
  const { status, stderr } = corral('call', '.', 'greet', '--args', '{}')
  assert.equal(status, 1)
  assert.match(stderr, /invalid_argument/)
  assert.match(stderr, /field "name" is missing/)
})
