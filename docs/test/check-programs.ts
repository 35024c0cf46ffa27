import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { parseManifest, parsePolicy } from '@corral/manifest'
import asc from 'assemblyscript/asc'
import { parseDocument, parse as parseYaml } from 'yaml'
import { repoRoot } from './markdown.js'
import type { Program } from './programs.js'
import { writeFiles } from './run-folder.js'

const exec = promisify(execFile)

/** Runs a command; rejects with its output (not only its exit code) when it fails. */
export async function runCommand(
  command: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string; timeout?: number } = {},
): Promise<void> {
  const child = exec(command, args, {
    cwd: options.cwd,
    env: options.env,
    timeout: options.timeout ?? 60_000,
  })
  if (options.input !== undefined) child.child.stdin?.end(options.input)
  await child.catch((error: { stdout?: string; stderr?: string; message: string }) => {
    throw new Error(
      `${command} ${args.join(' ')} failed:\n${[error.stdout, error.stderr].join('\n').trim() || error.message}`,
    )
  })
}

async function inTempFolder<T>(use: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'corral-docs-'))
  try {
    return await use(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/**
 * A YAML block: a plugin manifest (it has `runtime`, or says `manifest`) is parsed by
 * @corral/manifest, a policy or a list of them (it has `plugin` and `status`, or says `policy`)
 * by parsePolicy; anything else must be well-formed YAML.
 */
export function checkYaml(program: Program): void {
  const document = parseDocument(program.code)
  if (document.errors.length > 0) throw new Error(document.errors.map((e) => e.message).join('\n'))
  const value: unknown = parseYaml(program.code)
  const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null
  const isPolicy = (v: unknown) => isRecord(v) && 'plugin' in v && 'status' in v
  if (program.attributes.has('manifest') || (isRecord(value) && 'runtime' in value)) {
    parseManifest(program.code, { source: `${program.file}:${program.line}` })
  } else if (
    program.attributes.has('policy') ||
    isPolicy(value) ||
    (Array.isArray(value) && value.every(isPolicy))
  ) {
    for (const policy of Array.isArray(value) ? value : [value]) parsePolicy(policy)
  }
}

export function checkJson(program: Program): void {
  JSON.parse(program.code)
}

/**
 * A JavaScript block passes `node --check`, as an ES module unless its `file=` name ends in `.cjs`
 * (a plugin's test, `test/plugin.test.mjs`, is one); a `sh run` block may run it.
 */
export async function checkJavaScript(program: Program): Promise<void> {
  const name = program.attributes.get('file') ?? 'block.mjs'
  await inTempFolder(async (dir) => {
    const file = path.join(dir, name.endsWith('.cjs') || name.endsWith('.mjs') ? name : `${name}.mjs`)
    await writeFile(file, program.code)
    await runCommand(process.execPath, ['--check', file])
  })
}

/**
 * Where shell blocks that run find `corral`: the clone's `bin` folder on the PATH, as the README
 * tells a reader to put it (`bin/corral` runs the workspace's built CLI).
 */
const cliFolder = path.join(repoRoot, 'bin')

/**
 * npm, as the guides' `npm install` runs it in a new plugin: from the cache when it can, without the
 * audit and funding requests and notices, which have nothing to do with what a block shows.
 */
const quietNpm = {
  npm_config_prefer_offline: 'true',
  npm_config_audit: 'false',
  npm_config_fund: 'false',
  npm_config_update_notifier: 'false',
}

/**
 * A shell block is syntax-checked; one that says `run` is run by bash -e in a temp folder holding
 * only the `files` (the Markdown file's blocks saved under their `file=<name>`).
 */
export async function checkShell(program: Program, files: Program[]): Promise<void> {
  await runCommand('bash', ['-n'], { input: program.code })
  if (!program.attributes.has('run')) return
  await inTempFolder(async (work) => {
    await writeFiles(work, files)
    await runCommand('bash', ['-e', '-o', 'pipefail', '-c', program.code], {
      cwd: work,
      timeout: 600_000,
      env: { ...process.env, ...quietNpm, PATH: `${cliFolder}${path.delimiter}${process.env.PATH ?? ''}` },
    })
  })
}

/** The C SDK's header, whose folder C blocks get on their include path. */
const cSdk = path.join(repoRoot, 'packages', 'plugin-sdk', 'c')

/** A C block is compiled for WebAssembly (WASI, with the warnings the C plugins are built with). */
export async function checkC(program: Program): Promise<void> {
  await inTempFolder(async (dir) => {
    const file = path.join(dir, program.attributes.get('file') ?? 'block.c')
    await writeFile(file, program.code)
    await runCommand('clang', [
      '--target=wasm32-wasi',
      '--sysroot=/usr',
      '-Wall',
      '-Wextra',
      '-Werror',
      `-I${cSdk}`,
      '-c',
      '-o',
      path.join(dir, 'block.o'),
      file,
    ])
  })
}

/** The Go SDK's build script: a plugin's folder in, a binary out, offline, in GOPATH mode. */
const goSdkBuild = path.join(repoRoot, 'packages', 'plugin-sdk', 'go', 'build-plugin.sh')

/**
 * A Go block is a `package main`. One that imports the Go SDK (`corral.dev/corral`) is built as a
 * plugin is, by the SDK's build-plugin.sh (offline, GOPATH mode, the SDK's protos generated); any
 * other by `go build` in GOPATH mode, standard library only.
 */
export async function checkGo(program: Program): Promise<void> {
  await inTempFolder(async (dir) => {
    const pkg = path.join(dir, 'src', 'docblock')
    await mkdir(pkg, { recursive: true })
    await writeFile(path.join(pkg, program.attributes.get('file') ?? 'main.go'), program.code)
    const output = path.join(dir, 'plugin')
    if (program.code.includes('"corral.dev/corral"')) {
      if (!existsSync(goSdkBuild)) throw new Error(`the Go SDK is missing: ${goSdkBuild}`)
      await runCommand('sh', [goSdkBuild, pkg, output], { timeout: 120_000 })
    } else {
      await runCommand('go', ['build', '-o', output, 'docblock'], {
        cwd: pkg,
        env: { ...process.env, GO111MODULE: 'off', GOFLAGS: '', GOPATH: dir },
      })
    }
  })
}

/** The build options of `corral new --template wasm-as`: AssemblyScript blocks are built with them. */
const templateAsconfig = path.join(repoRoot, 'packages', 'cli', 'templates', 'wasm-as', 'asconfig.json')
/** asc's own asconfig-to-flags conversion: exported by assemblyscript/asc, missing from its types. */
const configToArguments = (asc as unknown as { configToArguments(options: object): string[] })
  .configToArguments

/**
 * An AssemblyScript block (`ts assemblyscript`) is compiled by asc as a new plugin is: the options
 * of the wasm-as template, the SDK from node_modules (`@corral/plugin-sdk/assembly`).
 */
export async function checkAssemblyScript(program: Program, workDir: string): Promise<void> {
  const dir = path.join(workDir, `${program.file.replace(/[^A-Za-z0-9_-]+/g, '_')}-${program.line}`)
  await rm(dir, { recursive: true, force: true })
  await mkdir(dir, { recursive: true })
  const file = program.attributes.get('file') ?? 'index.ts'
  await writeFile(path.join(dir, file), program.code)
  const { options } = JSON.parse(await readFile(templateAsconfig, 'utf8')) as {
    options: Record<string, unknown>
  }
  const { error, stderr } = await asc.main(
    [file, '--baseDir', dir, ...configToArguments({ ...options, outFile: 'plugin.wasm' })],
    {},
  )
  if (error !== null) throw new Error(`${error.message}\n${stderr.toString()}`)
}
