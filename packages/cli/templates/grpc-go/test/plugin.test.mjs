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
  const { status, stdout } = corral('call', '.', 'greet', '--args', '{"name":"Ada"}')
  assert.equal(status, 0)
  assert.deepEqual(JSON.parse(stdout), { message: 'Hello, Ada!', count: 1 })
})

test('greet without a name fails with its own code', () => {
  const { status, stderr } = corral('call', '.', 'greet', '--args', '{}')
  assert.equal(status, 1)
  assert.match(stderr, /missing_name/)
})

/** What the host calls the handler of `POST /plugins/<name>/greet` with: the HTTP request. */
const postGreet = (body) => ({
  method: 'POST',
  path: '/greet',
  params: {},
  query: {},
  headers: { 'content-type': 'application/json' },
  body,
  user: null,
})

test('the POST /greet route answers the JSON body it is sent, as a host serves it', () => {
  const request = JSON.stringify(postGreet('{"name":"Ada"}'))
  const { status, stdout, stderr } = corral('call', '.', 'greetRoute', '--args', request)
  assert.equal(status, 0, stderr)
  const response = JSON.parse(stdout)
  assert.equal(response.status, 200)
  assert.deepEqual(JSON.parse(response.body), { message: 'Hello, Ada!', count: 1 })
})

test('the POST /greet route refuses a body without a name with its own code', () => {
  const { status, stderr } = corral('call', '.', 'greetRoute', '--args', JSON.stringify(postGreet('{}')))
  assert.equal(status, 1)
  assert.match(stderr, /missing_name/)
})
