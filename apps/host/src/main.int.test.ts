import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { processExists } from '@corral/grpc-runner/testing'
import { corralWat, wat2wasm } from '@corral/wasm-runner/testing'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { appDir, examplesDir, postSession } from './testing/test-host.js'

// The main job as `pnpm start` runs it (node dist/main.js, as the build made it), on a free port, a
// temp data folder and a temp plugins folder: hello-grpc (a plugin process) and `spinner`, a WAT
// plugin whose route never returns before its 1 s call timeout (a request under way at SIGTERM).
const mainJs = path.join(appDir, 'dist/main.js')
const spinnerManifest = `
name: spinner
version: 0.1.0
runtime: wasm
entry:
  wasm: plugin.wasm
resources:
  call_timeout: 1s
provides:
  routes:
    - { method: GET, path: /spin, handler: spin, middleware: [] }
`
const policies = `
- plugin: hello-grpc
  status: approved
  grants:
    - { type: db, access: [read, write], scope: ["hello_grpc_*"] }
    - { type: cache, access: [read, write], scope: ["*"] }
  limits: { memory_mb: 256 }
- plugin: spinner
  status: approved
  grants: []
`

/** The main job, running: what it printed so far, and its exit. */
interface MainProcess {
  child: ChildProcess
  output(): string
  /** Resolves once the output matches `pattern` (rejects if the process exits first). */
  printed(pattern: RegExp): Promise<RegExpMatchArray>
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

let root: string
const started: MainProcess[] = []

function startMain(overrides: NodeJS.ProcessEnv = {}): MainProcess {
  const { CORRAL_ADMIN_PASSWORD, DATABASE_URL, REDIS_URL, CORRAL_PLUGIN_USER, ...inherited } = process.env
  const env: NodeJS.ProcessEnv = {
    ...inherited,
    PORT: '0',
    CORRAL_DATA_DIR: path.join(root, 'data'),
    CORRAL_PLUGINS_DIR: path.join(root, 'plugins'),
    CORRAL_POLICIES: path.join(root, 'policies.yaml'),
    ...overrides,
  }
  const child = spawn(process.execPath, [mainJs], { cwd: appDir, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  const waiters = new Set<() => void>()
  const collect = (chunk: Buffer) => {
    out += chunk.toString('utf8')
    for (const wake of waiters) wake()
  }
  child.stdout?.on('data', collect)
  child.stderr?.on('data', collect)
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      for (const wake of waiters) wake()
      resolve({ code, signal })
    }),
  )
  const running: MainProcess = {
    child,
    output: () => out,
    printed: (pattern) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const match = pattern.exec(out)
          if (match !== null) {
            waiters.delete(check)
            resolve(match)
          } else if (child.exitCode !== null || child.signalCode !== null) {
            waiters.delete(check)
            reject(new Error(`the host exited before printing ${pattern}:\n${out}`))
          }
        }
        waiters.add(check)
        check()
      }),
    exited,
  }
  started.push(running)
  return running
}

/** Pids of the live processes `pid` started (the plugin processes). */
function childrenOf(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`)
    .flatMap((task) => readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').split(' '))
    .filter(Boolean)
    .map(Number)
    .filter(processExists)
}

/** How often the host warned that its plugin processes run as root. */
function rootWarnings(output: string): number {
  return output.match(/gRPC plugin processes run as root/g)?.length ?? 0
}

/** A line of `/proc/<pid>/status`, such as `Uid`, as its fields. */
function statusFields(pid: number, field: string): string[] {
  const line = new RegExp(`^${field}:(.*)$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]
  return (line ?? '').trim().split(/\s+/)
}

/** The status of a sign-in as the administrator. */
async function signIn(url: string, password: string): Promise<number> {
  return (await postSession(url, 'admin', password)).status
}

beforeAll(async () => {
  if (!existsSync(mainJs)) throw new Error(`${mainJs} is missing: build apps/host first`)
  root = await mkdtemp(path.join(os.tmpdir(), 'corral-main-'))
  const spinner = path.join(root, 'plugins/spinner')
  await mkdir(spinner, { recursive: true })
  await writeFile(path.join(spinner, 'plugin.yaml'), spinnerManifest)
  await writeFile(
    path.join(spinner, 'plugin.wasm'),
    await wat2wasm(
      corralWat(
        '(func (export "spin") (param i32 i32) (result i64) (loop $forever (br $forever)) (i64.const 0))',
      ),
    ),
  )
  await symlink(path.join(examplesDir, 'hello-grpc'), path.join(root, 'plugins/hello-grpc'))
  await writeFile(path.join(root, 'policies.yaml'), policies)
})

afterAll(async () => {
  for (const { child } of started)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  await Promise.all(started.map((s) => s.exited))
  if (root !== undefined) await rm(root, { recursive: true, force: true })
})

describe('the main job (node dist/main.js)', { timeout: 90_000 }, () => {
  let password: string

  it('prints its URL and a generated password that signs in, and on SIGTERM drains, stops its plugins and exits 0', async () => {
    const main = startMain()
    const [, url] = await main.printed(/is running at (http:\/\/\S+)/)
    const [, generated] = await main.printed(/Sign in as "admin" with password (\S+)/)
    await main.printed(/Ctrl-C stops it/)
    password = generated as string
    expect(main.output()).toMatch(/✓ hello-grpc .*running, policy approved/)
    // Without CORRAL_PLUGIN_USER, a host running as root (as CI's does) says so, once.
    expect(rootWarnings(main.output())).toBe(process.getuid?.() === 0 ? 1 : 0)
    expect(await signIn(url as string, password)).toBe(200)
    expect(await signIn(url as string, 'not-the-password')).toBe(401)
    const plugins = childrenOf(main.child.pid as number)
    expect(plugins.length).toBeGreaterThan(0)

    // A request under way when SIGTERM comes is answered (here: its plugin's timeout) before the exit.
    const underWay = fetch(`${url}/plugins/spinner/spin`)
    await vi.waitFor(async () =>
      expect(await (await fetch(`${url}/metrics`)).text()).toContain(
        'corral_plugin_in_flight{plugin="spinner"} 1',
      ),
    )
    main.child.kill('SIGTERM')
    const answered = await underWay
    expect(answered.status).toBe(504)
    expect(await answered.json()).toMatchObject({ code: 'deadline_exceeded' })
    expect(await main.exited).toEqual({ code: 0, signal: null })
    expect(main.output()).toContain('SIGTERM: stopping')
    expect(plugins.filter(processExists)).toEqual([])
    await expect(fetch(`${url}/healthz`)).rejects.toThrow()
  })

  it('prints no new password at the next start on the same data folder, where the first one still signs in', async () => {
    expect(password).toBeDefined()
    const main = startMain()
    const [, url] = await main.printed(/is running at (http:\/\/\S+)/)
    await main.printed(/Ctrl-C stops it/)
    expect(main.output()).not.toContain('with password')
    expect(main.output()).toContain('Sign in with your account')
    expect(await signIn(url as string, password)).toBe(200)
    main.child.kill('SIGTERM')
    expect(await main.exited).toEqual({ code: 0, signal: null })
  })

  it('runs its gRPC plugins as the user CORRAL_PLUGIN_USER names, and does not warn', async () => {
    if (process.getuid?.() !== 0) throw new Error('running plugins as another user takes root (as CI runs)')
    const main = startMain({ CORRAL_PLUGIN_USER: 'nobody' })
    await main.printed(/Ctrl-C stops it/)
    expect(main.output()).toMatch(/✓ hello-grpc .*running, policy approved/)
    expect(rootWarnings(main.output())).toBe(0)
    const plugin = childrenOf(main.child.pid as number).find((pid) =>
      readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('hello-grpc'),
    )
    expect(statusFields(plugin as number, 'Uid')).toEqual(['65534', '65534', '65534', '65534'])
    main.child.kill('SIGTERM')
    expect(await main.exited).toEqual({ code: 0, signal: null })
  })

  it('refuses to start on a CORRAL_PLUGIN_USER it cannot resolve, naming it', async () => {
    const main = startMain({ CORRAL_PLUGIN_USER: 'no-such-user' })
    expect((await main.exited).code).not.toBe(0)
    expect(main.output()).toContain(
      'CORRAL_PLUGIN_USER=no-such-user: neither uid:gid nor a user in /etc/passwd',
    )
  })
})

describe('the main job, given a policies file', { timeout: 90_000 }, () => {
  it('takes one policy, as corral policy prints it, as well as a list', async () => {
    const file = path.join(root, 'one-policy.yaml')
    await writeFile(file, 'plugin: spinner\nstatus: approved\ngrants: []\n')
    const main = startMain({ CORRAL_POLICIES: file, CORRAL_DATA_DIR: path.join(root, 'data-one-policy') })
    await main.printed(/Ctrl-C stops it/)
    expect(main.output()).toMatch(/✓ spinner 0\.1\.0 \[wasm\] running, policy approved/)
    main.child.kill('SIGTERM')
    expect(await main.exited).toEqual({ code: 0, signal: null })
  })

  it('with a typo: says so with the file and the line, without a stack, and exits with code 1', async () => {
    const file = path.join(root, 'typo.yaml')
    await writeFile(file, '- plugin: spinner\n  status: aproved\n')
    const main = startMain({ CORRAL_POLICIES: file, CORRAL_DATA_DIR: path.join(root, 'data-typo') })
    expect(await main.exited).toEqual({ code: 1, signal: null })
    expect(main.output()).toContain(`✗ [invalid_argument] ${file} has 1 problem:\n  2:11 [0].status: `)
    expect(main.output()).not.toMatch(/^\s+at /m)
  })
})
