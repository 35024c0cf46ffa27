import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { cp, mkdir, mkdtemp, readFile, realpath, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createBackends, createPluginManager } from '@corral/manager'
import { parsePolicy } from '@corral/manifest'
import { extract } from 'tar'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { parse as parseYaml, stringify } from 'yaml'

// The built binary, run as a user runs it: `node dist/bin.js …` in a temporary folder.
const bin = fileURLToPath(new URL('../dist/bin.js', import.meta.url))

interface Run {
  status: number
  stdout: string
  stderr: string
}

/** Runs the CLI, its output piped, in an environment of its own. */
function corralIn(env: NodeJS.ProcessEnv, cwd: string, ...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { cwd, env }, (error, stdout, stderr) =>
      resolve({ status: error === null ? 0 : Number(error.code ?? 1), stdout, stderr }),
    )
  })
}

// The test's environment but FORCE_COLOR, which a CI machine may set: the output is matched as text.
const { FORCE_COLOR: _forced, ...plainEnv } = process.env

/** Runs the CLI, its output piped, as a user's: without colours. */
function corral(cwd: string, ...args: string[]): Promise<Run> {
  return corralIn(plainEnv, cwd, ...args)
}

let work: string
const children: ChildProcess[] = []

beforeEach(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'corral-cli-'))
})

afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGTERM')
      await exited
    }
  }
  await rm(work, { recursive: true, force: true })
})

/** `corral new` + `corral build` of a template, as `demo`; the built folder. */
async function scaffold(template: string): Promise<string> {
  const made = await corral(work, 'new', 'demo', '--template', template)
  expect(made.stderr).toBe('')
  expect(made.status).toBe(0)
  const built = await corral(work, 'build', 'demo')
  expect(built.status, built.stderr).toBe(0)
  return path.join(work, 'demo')
}

/**
 * Runs the plugin's own `npm test` (`node --test`) with the CLI under test: its exit code and output.
 * `CI` and `FORCE_COLOR` set, as on a user's CI machine, where the CLI colours its messages.
 */
function ownTest(dir: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--test'],
      { cwd: dir, env: { ...process.env, CORRAL_CLI: bin, CI: '1', FORCE_COLOR: '1' } },
      (error, stdout, stderr) =>
        resolve({ status: error === null ? 0 : Number(error.code ?? 1), stdout, stderr }),
    )
  })
}

describe.each([
  { template: 'wasm-as', answer: { message: 'Hello, Ada!' } },
  { template: 'grpc-ts', answer: { message: 'Hello, Ada!', count: 1 } },
  { template: 'wasm-c', answer: { message: 'Hello, Ada!' } },
  { template: 'grpc-go', answer: { message: 'Hello, Ada!', count: 1 } },
])('corral new --template $template', ({ template, answer }) => {
  it('builds a plugin that answers calls, fails with its own code, and passes its own test', async () => {
    const dir = await scaffold(template)
    const called = await corral(work, 'call', 'demo', 'greet', '--args', '{"name":"Ada"}')
    expect(called.status, called.stderr).toBe(0)
    expect(JSON.parse(called.stdout)).toEqual(answer)

    const refused = await corral(work, 'call', 'demo', 'greet', '--args', '{"name":""}')
    expect(refused.status).toBe(1)
    expect(refused.stdout).toBe('')
    expect(refused.stderr).toContain('[demo:missing_name]')

    const invalid = await corral(work, 'call', 'demo', 'greet', '--args', '{"name":7}')
    expect(invalid.status).toBe(1)
    expect(invalid.stderr).toContain('[invalid_argument]')
    expect(invalid.stderr).toMatch(/name/)

    const valid = await corral(dir, 'validate')
    expect(valid.status, valid.stderr).toBe(0)
    expect(valid.stdout).toContain('✓ registration')

    const own = await ownTest(dir)
    expect(own.status, own.stdout + own.stderr).toBe(0)
  })
})

describe('corral new --template wasm-c', () => {
  it('builds outside any node_modules, with corral.h copied in, and fails for a mistyped field', async () => {
    const dir = await scaffold('wasm-c')
    expect(await readFile(path.join(dir, 'include', 'corral.h'), 'utf8')).toContain(
      '#define CORRAL_ABI_VERSION 1',
    )
    const mistyped = await corral(work, 'call', 'demo', 'greet', '--args', '{"name":42}')
    expect(mistyped.status).toBe(1)
    expect(mistyped.stderr).toContain('[invalid_argument] demo: field "name" must be a string')
    await writeFile(
      path.join(dir, 'plugin.yaml'),
      `${await readFile(path.join(dir, 'plugin.yaml'), 'utf8')}\nconfig:\n  greeting: Grüß Gott\n`,
    )
    const configured = await corral(work, 'call', 'demo', 'greet', '--args', '{"name":"Ada \\"A\\" 😀"}')
    expect(configured.status, configured.stderr).toBe(0)
    expect(JSON.parse(configured.stdout)).toEqual({ message: 'Grüß Gott, Ada "A" 😀!' })
  })
})

describe('corral new --template extism', () => {
  it('builds an Extism plugin that Corral loads as one: text in, text out, an Extism error', async () => {
    const dir = await scaffold('extism')
    const called = await corral(work, 'call', 'demo', 'greet', '--args', '"Ada"')
    expect(called.status, called.stderr).toBe(0)
    expect(JSON.parse(called.stdout)).toBe('Hello, Ada!')

    const refused = await corral(work, 'call', 'demo', 'greet', '--args', '""')
    expect(refused.status).toBe(1)
    expect(refused.stdout).toBe('')
    expect(refused.stderr).toContain('[plugin_error] demo: missing_name: say who to greet')
    // Without --args, no input: not the text {}.
    const noArgs = await corral(work, 'call', 'demo', 'greet')
    expect(noArgs.status).toBe(1)
    expect(noArgs.stderr).toContain('[plugin_error] demo: missing_name: say who to greet')

    const valid = await corral(dir, 'validate')
    expect(valid.status, valid.stderr).toBe(0)
    const own = await ownTest(dir)
    expect(own.status, own.stdout + own.stderr).toBe(0)
  })
})

/** Whether a 64-bit ELF executable has a PT_INTERP program header: a dynamic loader to start it. */
function namesDynamicLoader(elf: Buffer): boolean {
  const headers = Number(elf.readBigUInt64LE(0x20))
  const size = elf.readUInt16LE(0x36)
  const count = elf.readUInt16LE(0x38)
  for (let i = 0; i < count; i++) if (elf.readUInt32LE(headers + i * size) === 3) return true
  return false
}

describe('a Go plugin on the Go SDK', () => {
  it('fails a call whose function panics with plugin_error, and goes on serving', async () => {
    const dir = await scaffold('grpc-go')
    const main = path.join(dir, 'main.go')
    const source = await readFile(main, 'utf8')
    expect(source).toContain('{"greet": greet}')
    await writeFile(
      main,
      `${source.replace('{"greet": greet}', '{"greet": greet, "explode": explode}')}
func explode(ctx context.Context, call *corral.Call) (interface{}, error) {
\tpanic("boom")
}
`,
    )
    const built = await corral(work, 'build', 'demo')
    expect(built.status, built.stderr).toBe(0)
    // Static by default: it names no dynamic loader.
    expect(namesDynamicLoader(await readFile(path.join(dir, 'build', 'demo')))).toBe(false)
    const policy = parsePolicy(parseYaml((await corral(work, 'policy', 'demo')).stdout))
    const backends = await createBackends()
    const manager = createPluginManager({
      sources: [{ path: dir }],
      hostVersion: '0.1.0',
      backends,
      policies: [policy],
      jobs: false,
      logger: { log() {} },
    })
    try {
      await manager.start()
      await expect(manager.call('demo', 'explode', {})).rejects.toMatchObject({
        code: 'plugin_error',
        message: expect.stringContaining('explode panicked: boom'),
      })
      expect(await manager.call('demo', 'greet', { name: 'Ada' })).toEqual({
        message: 'Hello, Ada!',
        count: 1,
      })
      expect(manager.get('demo')?.state).toBe('running')
    } finally {
      await manager.close()
      await backends.close()
    }
  })
})

describe('output when piped', () => {
  // As on a CI machine: CI set, neither NO_COLOR nor FORCE_COLOR.
  const { NO_COLOR: _noColor, ...inherited } = plainEnv
  const onCi = { ...inherited, CI: '1' }

  it('has no colours, even where CI is set, and a build shows its step as two plain lines', async () => {
    const runs = [
      await corralIn(onCi, work, 'new', 'demo', '--template', 'wasm-as'),
      await corralIn(onCi, work, 'build', 'demo'),
      await corralIn(onCi, work, 'validate', 'demo'),
      await corralIn(onCi, work, 'call', 'demo', 'greet', '--args', '{"name":""}'),
    ]
    expect(runs.map((run) => run.status)).toEqual([0, 0, 0, 1])
    expect(runs[0]?.stdout).toContain('✓ created')
    expect(runs[2]?.stdout).toContain('✓ registration')
    expect(runs[3]?.stderr).toContain('✗ [demo:missing_name]')
    for (const run of runs) expect(run.stdout + run.stderr).not.toContain('\x1b')
    // No spinner frames, no carriage returns: one line as the step starts, one as it ends.
    expect(runs[1]?.stderr).toBe(
      '… building demo: asc --config asconfig.json\n✓ building demo: asc --config asconfig.json\n',
    )
  })

  it('has colours where FORCE_COLOR asks for them, and none where FORCE_COLOR=0', async () => {
    await corral(work, 'new', 'demo', '--template', 'wasm-as')
    const forced = await corralIn({ ...onCi, FORCE_COLOR: '1' }, work, 'call', 'demo', 'nothing')
    expect(forced.status).toBe(1)
    expect(forced.stderr).toContain('\x1b[31m✗\x1b[39m')
    const off = await corralIn({ ...onCi, FORCE_COLOR: '0' }, work, 'call', 'demo', 'nothing')
    expect(off.status).toBe(1)
    expect(off.stderr).toContain('✗ [load_failed]')
    expect(off.stderr).not.toContain('\x1b')
  })
})

describe('corral call', () => {
  it('loads the plugin under the policy file given, and prints a refusal as a PluginError', async () => {
    await scaffold('grpc-ts')
    // Approved, but without the cache grant the plugin asks for.
    await writeFile(path.join(work, 'policy.yaml'), 'plugin: demo\nstatus: approved\ngrants: []\n')
    const denied = await corral(
      work,
      'call',
      'demo',
      'greet',
      '--args',
      '{"name":"Ada"}',
      '--policy',
      'policy.yaml',
    )
    expect(denied.status).toBe(1)
    expect(denied.stderr).toMatch(/\[permission_denied\].*cache/)
  })

  it('refuses a TypeScript entry.node on its line, as validate does, instead of Node’s stack', async () => {
    await corral(work, 'new', 'demo', '--template', 'grpc-ts')
    const manifest = path.join(work, 'demo', 'plugin.yaml')
    const text = (await readFile(manifest, 'utf8')).replace('node: dist/main.js', 'node: src/main.ts')
    await writeFile(manifest, text)
    const line = text.split('\n').indexOf('  node: src/main.ts') + 1
    const expected = `${line}:9 entry.node: must be built JavaScript, not TypeScript source: run corral build and name its output, like entry: { node: dist/main.js }`
    for (const run of [
      await corral(work, 'call', 'demo', 'greet', '--args', '{"name":"Ada"}'),
      await corral(work, 'validate', 'demo'),
    ]) {
      expect(run.status).toBe(1)
      expect(run.stderr).toContain('[manifest_invalid]')
      expect(run.stderr).toContain(expected)
      expect(run.stderr).not.toContain('ERR_UNKNOWN_FILE_EXTENSION')
    }
  })

  it('takes a policies file holding its policy alone or in a list, and names the file and line of a problem', async () => {
    await scaffold('grpc-ts')
    const printed = (await corral(work, 'policy', 'demo')).stdout
    await writeFile(path.join(work, 'one.yaml'), printed)
    await writeFile(
      path.join(work, 'list.yaml'),
      stringify([{ plugin: 'other', status: 'blocked' }, parseYaml(printed)]),
    )
    for (const file of ['one.yaml', 'list.yaml']) {
      const run = await corral(work, 'call', 'demo', 'greet', '--args', '{"name":"Ada"}', '--policy', file)
      expect(run.status, run.stderr).toBe(0)
    }

    await writeFile(path.join(work, 'other.yaml'), 'plugin: other\nstatus: approved\n')
    const none = await corral(work, 'call', 'demo', 'greet', '--policy', 'other.yaml')
    expect(none.status).toBe(1)
    expect(none.stderr).toBe('✗ [invalid_argument] other.yaml has no policy for demo (it has: other)\n')

    await writeFile(path.join(work, 'typo.yaml'), printed.replace('status: approved', 'status: aproved'))
    const line = printed.split('\n').indexOf('status: approved') + 1
    const typo = await corral(work, 'call', 'demo', 'greet', '--policy', 'typo.yaml')
    expect(typo.status).toBe(1)
    expect(typo.stderr).toContain(`✗ [invalid_argument] typo.yaml has 1 problem:\n  ${line}:9 status: `)
  })

  it('says why a plugin whose folder has another name did not load', async () => {
    await corral(work, 'new', 'demo', '--template', 'wasm-as')
    await rename(path.join(work, 'demo'), path.join(work, 'demo-folder'))
    const manifest = path.join(work, 'demo-folder', 'plugin.yaml')
    const text = await readFile(manifest, 'utf8')
    await writeFile(
      manifest,
      text.replace('version: 0.1.0\n', 'version: 0.1.0\nmin_host_version: ">=2.0.0"\n'),
    )
    const run = await corral(work, 'call', 'demo-folder', 'greet', '--args', '{"name":"Ada"}')
    expect(run.status).toBe(1)
    expect(run.stderr).toContain(
      '✗ [incompatible] demo: demo 0.1.0 needs host >=2.0.0, but this host is 0.1.0',
    )
    // The host's warning of the failure says why too.
    expect(run.stderr).toContain('warn demo-folder: discovered → failed: demo 0.1.0 needs host >=2.0.0')
  })

  it('prints each problem of invalid arguments once, and sends {} to a JSON plugin without --args', async () => {
    await scaffold('grpc-ts')
    const problem = 'name: Invalid input: expected string, received number'
    const invalid = await corral(work, 'call', 'demo', 'greet', '--args', '{"name":7}')
    expect(invalid.status).toBe(1)
    expect(invalid.stderr).toBe(`✗ [invalid_argument] demo: invalid arguments: ${problem}\n`)
    const noArgs = await corral(work, 'call', 'demo', 'greet')
    expect(noArgs.status).toBe(1)
    expect(noArgs.stderr).toContain('name: Invalid input: expected string, received undefined')
  })

  it('ends quietly, with the exit code of a command SIGPIPE ended, when its reader goes away', async () => {
    await scaffold('grpc-ts')
    const child = spawn(process.execPath, [bin, 'call', 'demo', 'greet', '--args', '{"name":"Ada"}'], {
      cwd: work,
      env: plainEnv,
    })
    children.push(child)
    // As `| head -c 0` does: the reading end is closed before the result is written.
    child.stdout.destroy()
    let stderr = ''
    child.stderr.on('data', (chunk) => {
      stderr += chunk
    })
    const code = await new Promise((resolve) => child.once('close', resolve))
    expect(stderr).toBe('')
    expect(code).toBe(141)
  })

  it('shows what a plugin writes to stderr as warnings, and its stdout with --verbose only', async () => {
    const dir = await scaffold('grpc-ts')
    const source = path.join(dir, 'src', 'plugin.ts')
    const from = 'async ({ name }, { cache }) => {\n'
    const text = await readFile(source, 'utf8')
    expect(text).toContain(from)
    await writeFile(
      source,
      text.replace(
        from,
        `${from}      console.error('to stderr:', name)\n      console.log('to stdout:', name)\n`,
      ),
    )
    expect((await corral(work, 'build', 'demo')).status).toBe(0)
    const quiet = await corral(work, 'call', 'demo', 'greet', '--args', '{"name":"Ada"}')
    expect(quiet.status, quiet.stderr).toBe(0)
    expect(quiet.stderr).toBe('warn demo: to stderr: Ada\n')
    const verbose = await corral(work, 'call', 'demo', 'greet', '--args', '{"name":"Ada"}', '--verbose')
    expect(verbose.stderr).toContain('warn demo: to stderr: Ada\n')
    expect(verbose.stderr).toContain('info demo: to stdout: Ada\n')
  })

  it('refuses arguments that are not JSON', async () => {
    await scaffold('grpc-ts')
    const bad = await corral(work, 'call', 'demo', 'greet', '--args', '{name}')
    expect(bad.status).toBe(1)
    expect(bad.stderr).toContain('[invalid_argument] --args is not JSON')
  })
})

describe('corral validate', () => {
  it('prints every problem at once with its line, and exits with code 1', async () => {
    const dir = path.join(work, 'broken')
    await mkdir(dir)
    await writeFile(
      path.join(dir, 'plugin.yaml'),
      [
        'name: broken',
        'version: 1.0',
        'runtime: wasm',
        'entry:',
        '  wasm: ../outside.wasm',
        'resouces:',
        '  memory_mb: 16',
      ].join('\n'),
    )
    const run = await corral(work, 'validate', 'broken')
    expect(run.status).toBe(1)
    expect(run.stderr).toContain('3 problems')
    expect(run.stderr).toMatch(/2:10 version: /)
    expect(run.stderr).toMatch(/5:9 entry\.wasm: must stay inside/)
    expect(run.stderr).toMatch(/6:1 resouces: is not a known field \(did you mean "resources"\?\)/)
  })

  it('checks the config against its schema, placing each problem on its line', async () => {
    await corral(work, 'new', 'demo', '--template', 'wasm-as')
    const manifest = path.join(work, 'demo', 'plugin.yaml')
    await writeFile(
      manifest,
      `${await readFile(manifest, 'utf8')}\nconfig:\n  greeting: ""\n  colour: teal\n`,
    )
    const run = await corral(work, 'validate', 'demo')
    expect(run.status).toBe(1)
    expect(run.stderr).toContain('2 problems')
    expect(run.stderr).toMatch(/\d+:\d+ config\.greeting: must NOT have fewer than 1 characters/)
    expect(run.stderr).toMatch(/\d+:\d+ config\.colour: must NOT have additional properties/)
    expect(run.stdout).toContain('- registration: not checked, build/plugin.wasm is not built yet')
  })

  it('reads a manifest in GoatKit’s form, printing a note on each such field’s line', async () => {
    await corral(work, 'new', 'demo', '--template', 'wasm-as')
    const manifest = path.join(work, 'demo', 'plugin.yaml')
    const corralForm = await readFile(manifest, 'utf8')
    const goatKitForm = corralForm.replace('runtime: wasm\n', '').replace('entry:\n  wasm:', 'wasm:')
    expect(goatKitForm).not.toBe(corralForm)
    await writeFile(manifest, goatKitForm)
    const line = goatKitForm.split('\n').findIndex((text) => text.startsWith('wasm:')) + 1
    const run = await corral(work, 'validate', 'demo')
    expect(run.status, run.stderr).toBe(0)
    expect(run.stdout).toContain(
      `! ${line}:1 wasm: GoatKit's form, read as runtime: wasm and entry: { wasm: build/plugin.wasm }`,
    )
    expect(run.stdout).toContain('✓ manifest')

    await writeFile(manifest, `${corralForm}binary: build/demo\n`)
    const ambiguous = await corral(work, 'validate', 'demo')
    expect(ambiguous.status).toBe(1)
    expect(ambiguous.stderr).toMatch(/\d+:1 binary: names the plugin's entry as entry does/)
  })

  it('says a folder without plugin.yaml has none, as every command does, and asks about a plugin.yml', async () => {
    const dir = path.join(work, 'empty')
    await mkdir(dir)
    const run = await corral(dir, 'validate')
    expect(run.status).toBe(1)
    expect(run.stderr).toMatch(/^✗ \[not_found\] cannot read manifest \S+plugin\.yaml: [^\n]+\n$/)
    expect((await corral(dir, 'call', '.', 'greet')).stderr).toBe(run.stderr)
    await writeFile(path.join(dir, 'plugin.yml'), 'name: demo\n')
    const misnamed = await corral(dir, 'validate')
    expect(misnamed.stderr).toMatch(/\(there is a plugin\.yml: did you mean plugin\.yaml\?\)\n$/)
  })

  it('fails for handlers the module does not export and a min_host_version this host is not', async () => {
    const dir = await scaffold('wasm-as')
    const manifest = path.join(dir, 'plugin.yaml')
    await writeFile(
      manifest,
      `${await readFile(manifest, 'utf8')}
min_host_version: ">=2.0.0"
provides:
  routes:
    - { method: POST, path: /greet, handler: greet, middleware: [] }
    - { method: POST, path: /bye, handler: farewell, middleware: [] }
`,
    )
    const run = await corral(work, 'validate', 'demo')
    expect(run.status).toBe(1)
    expect(run.stderr).toContain('2 problems')
    expect(run.stderr).toMatch(
      /\d+:19 min_host_version: \[incompatible\] demo 0\.1\.0 needs host >=2\.0\.0, but this host is 0\.1\.0/,
    )
    expect(run.stderr).toMatch(
      /\d+:\d+ provides\.routes\[1\]\.handler: \[unimplemented\] farewell is not a function build\/plugin\.wasm exports/,
    )
  })

  it('checks the built registration against the manifest', async () => {
    const dir = await scaffold('grpc-ts')
    const source = path.join(dir, 'src', 'plugin.ts')
    const registered = (await readFile(source, 'utf8')).replace(
      '  register: {\n',
      "  register: {\n    permissions: [{ type: 'cache', access: ['read'], scope: ['secrets:*'] }],\n",
    )
    expect(registered).toContain('secrets:*')
    await writeFile(source, registered)
    const built = await corral(work, 'build', 'demo')
    expect(built.status, built.stderr).toBe(0)
    const run = await corral(work, 'validate', 'demo')
    expect(run.status).toBe(1)
    expect(run.stderr).toContain('cache on secrets:* is not requested by the manifest')
  })
})

describe('corral policy', () => {
  it('prints the policy that grants exactly what the plugin requests', async () => {
    await corral(work, 'new', 'demo', '--template', 'grpc-ts')
    const run = await corral(work, 'policy', 'demo')
    expect(run.status).toBe(0)
    const policy = parsePolicy(parseYaml(run.stdout))
    expect(policy).toMatchObject({
      plugin: 'demo',
      status: 'approved',
      grants: [{ type: 'cache', access: ['read', 'write'], scope: ['greetings:*'] }],
      limits: { memory_mb: 256, init_timeout: 15_000 },
    })
  })
})

describe('corral pack, sign, verify', () => {
  it('packs a gRPC TypeScript plugin that runs when unpacked elsewhere, signed, and refused once tampered', async () => {
    await scaffold('grpc-ts')
    expect((await corral(work, 'keygen', '--out', 'release')).status).toBe(0)
    const packed = await corral(work, 'pack', 'demo', '--key', 'release.key.pem', '--out', 'demo.tgz')
    expect(packed.status, packed.stderr).toBe(0)
    const digest = /sha256 ([0-9a-f]{64})/.exec(packed.stdout)?.[1]
    expect(await readFile(path.join(work, 'demo.tgz.sha256'), 'utf8')).toBe(`${digest}  demo.tgz\n`)

    // Elsewhere: no node_modules above it, nothing but the archive and the public key.
    const elsewhere = await mkdtemp(path.join(tmpdir(), 'corral-cli-elsewhere-'))
    try {
      await cp(path.join(work, 'demo.tgz'), path.join(elsewhere, 'demo.tgz'))
      await cp(path.join(work, 'release.pub.pem'), path.join(elsewhere, 'release.pub.pem'))
      await extract({ file: path.join(elsewhere, 'demo.tgz'), cwd: elsewhere })
      const called = await corral(elsewhere, 'call', 'demo', 'greet', '--args', '{"name":"Ada"}')
      expect(called.status, called.stderr).toBe(0)
      expect(JSON.parse(called.stdout)).toEqual({ message: 'Hello, Ada!', count: 1 })

      const verified = await corral(elsewhere, 'verify', 'demo', '--trusted', 'release.pub.pem')
      expect(verified.status, verified.stderr).toBe(0)

      const entry = path.join(elsewhere, 'demo', 'dist', 'main.js')
      await writeFile(entry, `${await readFile(entry, 'utf8')}\n// tampered\n`)
      const tampered = await corral(elsewhere, 'verify', 'demo', '--trusted', 'release.pub.pem')
      expect(tampered.status).toBe(1)
      expect(tampered.stderr).toContain('[permission_denied]')
      expect(tampered.stderr).toContain('dist/main.js was changed')

      const backends = await createBackends()
      const manager = createPluginManager({
        sources: [{ path: path.join(elsewhere, 'demo') }],
        hostVersion: '0.1.0',
        backends,
        jobs: false,
        logger: { log() {} },
        signatures: {
          required: true,
          trustedKeys: [await readFile(path.join(elsewhere, 'release.pub.pem'), 'utf8')],
        },
      })
      try {
        await manager.start()
        expect(manager.get('demo')).toMatchObject({
          state: 'failed',
          lastError: { code: 'permission_denied' },
        })
      } finally {
        await manager.close()
        await backends.close()
      }
    } finally {
      await rm(elsewhere, { recursive: true, force: true })
    }
  })

  it('checks the key and the place of the archive before packing; keygen replaces no key', async () => {
    await scaffold('wasm-as')
    const here = await realpath(work)
    const noKey = await corral(work, 'pack', 'demo', '--key', 'missing.pem')
    expect(noKey.status).toBe(1)
    expect(noKey.stderr).toMatch(/^✗ \[not_found\] cannot read key missing\.pem: [^\n]+\n$/)
    const noFolder = await corral(work, 'pack', 'demo', '--out', 'missing/demo.tgz')
    expect(noFolder.status).toBe(1)
    expect(noFolder.stderr).toBe(
      `✗ [not_found] cannot write ${here}/missing/demo.tgz: there is no folder ${here}/missing\n`,
    )
    await mkdir(path.join(work, 'out'))
    const intoFolder = await corral(work, 'pack', 'demo', '--out', 'out')
    expect(intoFolder.status, intoFolder.stderr).toBe(0)
    expect(existsSync(path.join(work, 'out', 'demo-0.1.0.tgz'))).toBe(true)

    expect((await corral(work, 'keygen', '--out', 'release')).status).toBe(0)
    const again = await corral(work, 'keygen', '--out', 'release')
    expect(again.status).toBe(1)
    expect(again.stderr).toBe(`✗ [already_exists] ${here}/release.key.pem already exists\n`)
  })

  it('signs and packs no private key and no archive of pack', async () => {
    const dir = await scaffold('wasm-as')
    // As a user does: the keys made in the plugin's folder, and signed from there.
    expect((await corral(dir, 'keygen', '--out', 'release')).status).toBe(0)
    const withKey = await corral(dir, 'sign', '.', '--key', 'release.key.pem')
    expect(withKey.status).toBe(1)
    expect(withKey.stderr).toContain('would include release.key.pem (a private key): move it out of')
    expect(existsSync(path.join(dir, 'plugin.sig'))).toBe(false)

    // Moved out, and a copy under another name: found by what it holds.
    await rename(path.join(dir, 'release.key.pem'), path.join(work, 'release.key.pem'))
    const key = await readFile(path.join(work, 'release.key.pem'), 'utf8')
    await writeFile(path.join(dir, 'notes.txt'), key)
    const copied = await corral(dir, 'sign', '.', '--key', '../release.key.pem')
    expect(copied.stderr).toContain('would include notes.txt (a private key)')
    await rm(path.join(dir, 'notes.txt'))

    expect((await corral(dir, 'pack', '.')).status).toBe(0)
    const withArchive = await corral(dir, 'sign', '.', '--key', '../release.key.pem')
    expect(withArchive.stderr).toContain(
      'would include demo-0.1.0.tgz (what corral pack writes), demo-0.1.0.tgz.sha256 (what corral pack writes)',
    )
    await rm(path.join(dir, 'demo-0.1.0.tgz'))
    await rm(path.join(dir, 'demo-0.1.0.tgz.sha256'))
    const signed = await corral(dir, 'sign', '.', '--key', '../release.key.pem')
    expect(signed.status, signed.stderr).toBe(0)

    // pack stages the folders of fs permissions: a key in one is refused.
    const manifest = path.join(dir, 'plugin.yaml')
    const text = await readFile(manifest, 'utf8')
    expect(text).toContain('  call_timeout: 500ms\n')
    await writeFile(
      manifest,
      text.replace(
        '  call_timeout: 500ms\n',
        '  call_timeout: 500ms\n  permissions:\n    - { type: fs, access: [read], scope: [data] }\n',
      ),
    )
    await mkdir(path.join(dir, 'data'))
    await writeFile(path.join(dir, 'data', 'id.pem'), key)
    const packed = await corral(work, 'pack', 'demo')
    expect(packed.status).toBe(1)
    expect(packed.stderr).toContain('packing demo would include data/id.pem (a private key)')
  })

  it('signs a built folder and verifies it; another key is not trusted', async () => {
    await scaffold('wasm-as')
    await corral(work, 'keygen', '--out', 'mine')
    await corral(work, 'keygen', '--out', 'theirs')
    expect((await corral(work, 'sign', 'demo', '--key', 'mine.key.pem')).status).toBe(0)
    expect((await corral(work, 'verify', 'demo', '--trusted', 'mine.pub.pem')).status).toBe(0)
    const other = await corral(work, 'verify', 'demo', '--trusted', 'theirs.pub.pem')
    expect(other.status).toBe(1)
    expect(other.stderr).toContain('[permission_denied]')
  })
})

/** What greet answers before and after the edits of the `corral dev` tests. */
const oldAnswer = /Hello, Ada![^!]/
const newAnswer = /Hello, Ada!!/

/**
 * `corral dev` of a new `demo` of `template`, calling greet with `args`: its output as it comes.
 * `prepare` changes the new plugin's folder first.
 */
async function startDev(template: string, args: string, prepare?: (dir: string) => Promise<void>) {
  const made = await corral(work, 'new', 'demo', '--template', template)
  expect(made.status, made.stderr).toBe(0)
  await prepare?.(path.join(work, 'demo'))
  const child = spawn(process.execPath, [bin, 'dev', 'demo', '--call', 'greet', '--args', args], {
    cwd: work,
    env: plainEnv,
  })
  children.push(child)
  const output = { stdout: '', stderr: '' }
  child.stdout.on('data', (chunk) => {
    output.stdout += chunk
  })
  child.stderr.on('data', (chunk) => {
    output.stderr += chunk
  })
  const failure = (text: string, code: number | null) =>
    new Error(`corral dev exited (${code}) before printing ${text}:\n${output.stdout}\n${output.stderr}`)
  /** Waits until `stream` has printed `text` `times` times in all. */
  const printed = (text: string, times = 1, stream: 'stdout' | 'stderr' = 'stdout') =>
    new Promise<void>((resolve, reject) => {
      const check = () => output[stream].split(text).length > times && resolve()
      child[stream].on('data', check)
      child.once('exit', (code) => reject(failure(text, code)))
      check()
    })
  /** What greet answered, in order: one line at the start and one after each reload. */
  const answers = () => output.stdout.split('\n').filter((line) => line.startsWith('demo.greet → '))
  /** The reloads `corral dev` reported. */
  const reloads = () => output.stderr.split('\n').filter((line) => line.startsWith('↻ '))
  /** Stops it as a service manager does (a shell's background job ignores Ctrl-C's SIGINT): its exit code. */
  const stop = () => {
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGTERM')
    return exited
  }
  return { output, printed, answers, reloads, stop }
}

const wasmAs = { template: 'wasm-as', source: 'assembly/index.ts', args: '{"name":"Ada"}', from: '${name}!`' }

describe.each([
  wasmAs,
  { template: 'grpc-ts', source: 'src/plugin.ts', args: '{"name":"Ada"}', from: '${name}!`' },
  { template: 'wasm-c', source: 'src/plugin.c', args: '{"name":"Ada"}', from: '"%s, %s!"' },
  { template: 'grpc-go', source: 'main.go', args: '{"name":"Ada"}', from: '"%s, %s!"' },
  { template: 'extism', source: 'assembly/index.ts', args: '"Ada"', from: '${name}!`' },
])('corral new --template $template, then corral dev', ({ template, source, args, from }) => {
  it('builds, answers, and on a source change rebuilds, hot-reloads once and answers anew', async () => {
    // What a new user types, in an empty folder: no build step of their own.
    const started = performance.now()
    const dev = await startDev(template, args)
    await dev.printed('demo.greet → ')
    expect(dev.output.stdout).toContain('Hello, Ada!')
    // The promise: an answer within a minute of `corral new`. On a 2-core machine it took 1.6–3.5 s
    // per template within the whole suite, and 9–23 s at load 20.
    const seconds = (performance.now() - started) / 1000
    console.log(`${template}: corral new → first answer of corral dev in ${seconds.toFixed(1)} s`)
    expect(seconds).toBeLessThan(60)
    expect(dev.output.stderr).toMatch(/^… building demo: .+\n✓ building demo: /m)
    const file = path.join(work, 'demo', source)
    const text = await readFile(file, 'utf8')
    expect(text).toContain(from)
    await writeFile(file, text.replace(from, from.replace('!', '!!')))
    await dev.printed('Hello, Ada!!')
    // One edit, one reload, of the rebuilt plugin: no reload of the old build before it.
    expect(dev.reloads()).toEqual([expect.stringMatching(/^↻ reloaded: /)])
    expect(dev.answers()).toEqual([expect.stringMatching(oldAnswer), expect.stringMatching(newAnswer)])
    expect(await dev.stop()).toBe(0)
  })
})

describe('corral dev, when the first build fails', () => {
  it('says so and waits, then runs the plugin once it builds', async () => {
    const dev = await startDev(wasmAs.template, wasmAs.args, async (dir) => {
      const file = path.join(dir, wasmAs.source)
      await writeFile(file, `${await readFile(file, 'utf8')}\nthis is not AssemblyScript\n`)
    })
    await dev.printed(
      'the build failed: nothing runs yet; corral dev tries again on the next change',
      1,
      'stderr',
    )
    await dev.printed('watching', 1, 'stderr')
    expect(dev.output.stderr).toContain('✗ [load_failed] asc failed')
    const file = path.join(work, 'demo', wasmAs.source)
    await writeFile(file, (await readFile(file, 'utf8')).replace('\nthis is not AssemblyScript\n', ''))
    await dev.printed('demo.greet → ')
    expect(dev.output.stderr).toContain('✓ demo runs')
    expect(dev.answers()).toEqual([expect.stringMatching(oldAnswer)])
    expect(await dev.stop()).toBe(0)
  })
})

describe('corral dev, when plugin.yaml changes', () => {
  it('grants what the new manifest requests, and names a manifest that does not read as what failed', async () => {
    const cache =
      '  permissions:\n    - type: cache\n      access: [read, write]\n      scope: ["greetings:*"]\n'
    let requesting = ''
    const dev = await startDev('grpc-ts', '{"name":"Ada"}', async (dir) => {
      requesting = await readFile(path.join(dir, 'plugin.yaml'), 'utf8')
      expect(requesting).toContain(cache)
      await writeFile(path.join(dir, 'plugin.yaml'), requesting.replace(cache, ''))
    })
    // Not requested, so not granted: greet's cache call is refused.
    await dev.printed('[permission_denied]', 1, 'stderr')
    const manifest = path.join(work, 'demo', 'plugin.yaml')
    await writeFile(manifest, requesting)
    await dev.printed('demo.greet → ')
    expect(dev.answers()).toEqual([expect.stringContaining('"Hello, Ada!"')])

    await writeFile(manifest, `${requesting}bogus: 1\n`)
    await dev.printed('the manifest check failed: demo keeps serving the version it ran before', 1, 'stderr')
    expect(dev.output.stderr).toMatch(
      /✗ \[manifest_invalid\] \S+plugin\.yaml has 1 problem:\n {2}\d+:1 bogus: /,
    )
    await dev.printed('demo.greet → ', 2)
    expect(dev.reloads()).toHaveLength(1)
    expect(await dev.stop()).toBe(0)
  })
})

describe('corral build, when esbuild fails', () => {
  it('fails with load_failed, as every build tool does', async () => {
    await corral(work, 'new', 'demo', '--template', 'grpc-ts')
    await writeFile(path.join(work, 'demo', 'src', 'plugin.ts'), 'export default {\n')
    const run = await corral(work, 'build', 'demo')
    expect(run.status).toBe(1)
    expect(run.stderr).toContain(
      '✗ [load_failed] esbuild src/main.ts → dist/main.js failed: Build failed with 1 error',
    )
  })
})

describe('a plugin folder or its plugin.yaml', () => {
  it('is taken alike by every command', async () => {
    await corral(work, 'new', 'demo', '--template', 'wasm-as')
    const manifest = path.join('demo', 'plugin.yaml')
    const built = await corral(work, 'build', manifest)
    expect(built.status, built.stderr).toBe(0)
    const valid = await corral(work, 'validate', manifest)
    expect(valid.status, valid.stderr).toBe(0)
    expect(valid.stdout).toContain('✓ registration')
    expect((await corral(work, 'keygen', '--out', 'release')).status).toBe(0)
    for (const args of [
      ['call', manifest, 'greet', '--args', '{"name":"Ada"}'],
      ['policy', manifest],
      ['pack', manifest, '--out', 'demo.tgz'],
      ['sign', manifest, '--key', 'release.key.pem'],
      ['verify', manifest, '--trusted', 'release.pub.pem'],
    ]) {
      const run = await corral(work, ...args)
      expect(run.status, `${args.join(' ')}: ${run.stderr}`).toBe(0)
    }
    const other = await corral(work, 'validate', path.join('demo', 'package.json'))
    expect(other.status).toBe(1)
    expect(other.stderr).toMatch(
      /^✗ \[invalid_argument\] \S+package\.json is a file: give the plugin's folder, or its plugin\.yaml\n$/,
    )
  })
})

describe('corral new', () => {
  it('says what a plugin name must be, and a usage error as every failure is said', async () => {
    const badName = await corral(work, 'new', 'MyPlugin', '--template', 'wasm-as')
    expect(badName.status).toBe(1)
    expect(badName.stderr).toBe(
      '✗ [invalid_argument] MyPlugin is not a plugin name: a name must be 2-63 characters of a-z, 0-9 and "-", starting with a letter\n',
    )
    const missing = await corral(work, 'new', 'demo')
    expect(missing.status).toBe(1)
    expect(missing.stderr).toMatch(
      /^✗ \[invalid_argument\] required option '-t, --template <template>' not specified\n/,
    )
  })
})

describe('corral dev, when a build fails', () => {
  it('says so, keeps the version it ran serving, and reloads once the source builds again', async () => {
    const dev = await startDev(wasmAs.template, wasmAs.args)
    await dev.printed('demo.greet → ')
    const file = path.join(work, 'demo', wasmAs.source)
    const text = await readFile(file, 'utf8')
    await writeFile(file, `${text}\nthis is not AssemblyScript\n`)
    await dev.printed('the build failed: demo keeps serving the version it ran before', 1, 'stderr')
    // The version it ran still answers; nothing was reloaded.
    await dev.printed('demo.greet → ', 2)
    expect(dev.answers()).toEqual([expect.stringMatching(oldAnswer), expect.stringMatching(oldAnswer)])
    expect(dev.reloads()).toEqual([])
    await writeFile(file, text.replace(wasmAs.from, wasmAs.from.replace('!', '!!')))
    await dev.printed('Hello, Ada!!')
    expect(dev.reloads()).toHaveLength(1)
    expect(await dev.stop()).toBe(0)
  })
})
