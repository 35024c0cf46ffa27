/**
 * Vitest global set-up of @corral/manager: one private PostgreSQL and one private Redis server for
 * the whole run, on 127.0.0.1 and unused ports, with data in temp directories; both are stopped and
 * their directories deleted afterwards. The distributed half of the backend suite runs against them.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { chownSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer, Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestProject } from 'vitest/node'
import type {} from './provided-context.js'

const postgresBin = '/usr/lib/postgresql/15/bin'

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject()))
    })
  })
}

/**
 * PostgreSQL refuses to run as root: when we are root (as CI is), run it as the `postgres` user,
 * directly (no wrapper process, so stopping the child stops the server).
 */
function serverUser(): { uid: number; gid: number } | Record<string, never> {
  if (process.getuid?.() !== 0) return {}
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres']).toString().trim())
  return { uid: id('-u'), gid: id('-g') }
}

async function waitFor(what: string, check: () => Promise<boolean>, child: ChildProcess): Promise<void> {
  const until = Date.now() + 60_000
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`${what} exited with code ${child.exitCode}`)
    if (await check()) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`${what} did not start within 60 s`)
}

function canConnect(port: number, probe?: { send: string; expect: string }): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket()
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(1000, () => done(false))
    socket.once('error', () => done(false))
    socket.connect(port, '127.0.0.1', () => {
      if (!probe) return done(true)
      socket.write(probe.send)
      socket.once('data', (data) => done(data.toString().includes(probe.expect)))
    })
  })
}

function stop(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 10_000)
    child.once('exit', () => {
      clearTimeout(force)
      resolve()
    })
    child.kill(signal)
  })
}

/** Starts both servers, provides their URLs to the tests, and returns the teardown that stops them. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const children: ChildProcess[] = []
  const dirs: string[] = []
  const teardown = async () => {
    // SIGINT is PostgreSQL's "fast shutdown"; Redis exits on SIGTERM without saving (no save configured).
    await Promise.all(children.map((c) => stop(c, c === children[0] ? 'SIGINT' : 'SIGTERM')))
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  }
  try {
    const pgDir = mkdtempSync(join(tmpdir(), 'corral-pg-'))
    dirs.push(pgDir)
    const user = serverUser()
    if ('uid' in user) chownSync(pgDir, user.uid, user.gid)
    execFileSync(
      join(postgresBin, 'initdb'),
      ['-D', join(pgDir, 'data'), '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8'],
      { stdio: 'ignore', cwd: pgDir, ...user },
    )
    const pgPort = await freePort()
    const pg = spawn(
      join(postgresBin, 'postgres'),
      [
        '-D',
        join(pgDir, 'data'),
        '-k',
        pgDir,
        '-h',
        '127.0.0.1',
        '-p',
        String(pgPort),
        '-c',
        'fsync=off',
        '-c',
        'synchronous_commit=off',
        '-c',
        'full_page_writes=off',
      ],
      { stdio: 'ignore', cwd: pgDir, ...user },
    )
    children.push(pg)

    const redisDir = mkdtempSync(join(tmpdir(), 'corral-redis-'))
    dirs.push(redisDir)
    const redisPort = await freePort()
    const redis = spawn(
      'redis-server',
      [
        '--port',
        String(redisPort),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        redisDir,
      ],
      { stdio: 'ignore' },
    )
    children.push(redis)

    const pgReady = join(postgresBin, 'pg_isready')
    await waitFor(
      'postgres',
      async () => {
        try {
          execFileSync(pgReady, ['-h', '127.0.0.1', '-p', String(pgPort), '-U', 'postgres'], {
            stdio: 'ignore',
          })
          return true
        } catch {
          return false
        }
      },
      pg,
    )
    await waitFor('redis-server', () => canConnect(redisPort, { send: 'PING\r\n', expect: '+PONG' }), redis)

    project.provide('databaseUrl', `postgres://postgres@127.0.0.1:${pgPort}/postgres`)
    project.provide('redisUrl', `redis://127.0.0.1:${redisPort}`)
  } catch (error) {
    await teardown()
    throw error
  }
  return teardown
}
