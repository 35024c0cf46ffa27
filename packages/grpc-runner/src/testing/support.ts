import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { defaultPolicy, effectiveGrant, loadManifest } from '@corral/manifest'
import type {
  EffectiveGrant,
  HostCallContext,
  HostCallHandler,
  Logger,
  Manifest,
  Plugin,
  ResourceLimits,
  ResourcePolicy,
  RuntimeState,
  RuntimeStateChange,
} from '@corral/types'
import { PluginError } from '@corral/types'
import { CallTokens } from '../call-tokens.js'

/**
 * This package's folder, found from this module whether it runs from `src/testing/` (this package's
 * tests) or from `dist/` (`@corral/grpc-runner/testing`, other packages' tests).
 */
function packageDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir)
  return dir
}

/** The repository root. */
export const repoRoot = join(packageDir(), '../..')
export const examplesDir = join(repoRoot, 'examples/plugins')
/** The fixture plugins, read from this package's sources (they are not built). */
export const fixturesDir = join(packageDir(), 'src/testing/fixtures')

/** What else of a policy a test grants besides the manifest's permissions. */
export type TestPolicy = Pick<ResourcePolicy, 'env' | 'unauthenticated_transport'>

/** A manifest and grant of an example plugin, with limits changed as given. */
export async function examplePlugin(
  name: string,
  limits: Partial<ResourceLimits> = {},
  extra: TestPolicy = {},
) {
  const { manifest, dir } = await loadManifest(join(examplesDir, name))
  return { manifest, dir, grant: grantFor(manifest, limits, extra) }
}

/**
 * The policy of a fixture written on bare grpc-js (`unary-plugin.mjs`, `token-forger.mjs`): like a
 * plugin on an old go-plugin, it speaks neither AutoMTLS nor peer secrets.
 */
export const bareFixturePolicy: TestPolicy = { unauthenticated_transport: true }

/** An approved grant of what the manifest asks, with limits and the rest of the policy as given. */
export function grantFor(
  manifest: Manifest,
  limits: Partial<ResourceLimits> = {},
  extra: TestPolicy = {},
): EffectiveGrant {
  const policy = { ...defaultPolicy(manifest.name), ...extra }
  policy.status = 'approved'
  policy.grants = manifest.resources.permissions
  const grant = effectiveGrant(manifest.resources, policy)
  return { ...grant, limits: { ...grant.limits, ...limits } }
}

/** A manifest for a fixture script run with Node (`fixtures/<script>`). */
export function fixtureManifest(name: string, script: string, args: string[] = []): Manifest {
  return {
    name,
    version: '0.1.0',
    runtime: 'grpc',
    entry: { node: script, args, env: [] },
    resources: { permissions: [] },
    config: {},
  }
}

/**
 * The host side of host calls as a test needs it: an in-memory cache, a `db.exec` that accepts
 * everything, and a record of every call with its context.
 */
export function recordingHost() {
  const calls: Array<{ method: string; args: unknown; context: HostCallContext }> = []
  const cache = new Map<string, string>()
  const handler: HostCallHandler = async (method, args, context) => {
    calls.push({ method, args, context })
    const a = args as { key: string; value: string }
    switch (method) {
      case 'cache.get':
        return { value: cache.get(a.key) ?? null }
      case 'cache.set':
        cache.set(a.key, a.value)
        return {}
      case 'cache.delete':
        return { deleted: cache.delete(a.key) }
      case 'db.exec':
        return { rows_affected: 0 }
      case 'log':
        return {}
      default:
        throw new PluginError('unimplemented', `no host method ${method} in this test`)
    }
  }
  return { handler, calls, cache }
}

/** A logger that keeps what it is given. */
export function memoryLogger() {
  const entries: Array<{ level: string; message: string; fields?: Record<string, unknown> }> = []
  const logger: Logger = {
    log: (level, message, fields) => {
      entries.push({ level, message, ...(fields === undefined ? {} : { fields }) })
    },
  }
  return { logger, entries }
}

/** Whether a process with this id exists (a zombie counts as gone). */
export function processExists(pid: number): boolean {
  if (!existsSync(`/proc/${pid}`)) return false
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'))
  } catch {
    return false
  }
}

/** Every live process in process group `pgid`, from /proc. */
export function processGroupMembers(pgid: number): number[] {
  const members: number[] = []
  for (const entry of readdirProc()) {
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      // pid (comm) state ppid pgrp ...: comm may hold spaces, so split after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (Number(fields[2]) === pgid && fields[0] !== 'Z') members.push(Number(entry))
    } catch {
      // Gone while reading.
    }
  }
  return members
}

/** Pids of live processes whose command line contains `needle`. */
export function processesWithCommandLine(needle: string): number[] {
  return readdirProc()
    .filter((entry) => {
      try {
        return readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(needle) && processExists(Number(entry))
      } catch {
        return false
      }
    })
    .map(Number)
}

function readdirProc(): string[] {
  return readdirSync('/proc').filter((name) => /^\d+$/.test(name))
}

/** Waits until `check` holds, polling; fails after `timeoutMs`. */
export async function eventually(
  check: () => boolean,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<void> {
  const start = Date.now()
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/**
 * The plugin's next move to `state`, from its own state changes (no polling): subscribe before
 * what causes it. Fails after `timeoutMs`.
 */
export function nextState(
  plugin: Pick<Plugin, 'onStateChange'>,
  state: RuntimeState,
  timeoutMs = 10_000,
): Promise<RuntimeStateChange> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop()
      reject(new Error(`timed out waiting for the plugin to become ${state}`))
    }, timeoutMs)
    const stop = plugin.onStateChange((change) => {
      if (change.to !== state) return
      clearTimeout(timer)
      stop()
      resolve(change)
    })
  })
}

/**
 * A call of a plugin in flight, as a host call needs one: its token in `calls` (new ones unless
 * given), for a call that may send `maxHostCallBytes` of host call arguments and ends in two minutes.
 */
export function callInFlight(options: { calls?: CallTokens; maxHostCallBytes?: number } = {}): {
  calls: CallTokens
  token: string
} {
  const calls = options.calls ?? new CallTokens()
  const token = calls.make()
  calls.add(token, {
    deadline: Date.now() + 120_000,
    chain: undefined,
    maxHostCallBytes: options.maxHostCallBytes ?? 1024,
    reject() {},
  })
  return { calls, token }
}
