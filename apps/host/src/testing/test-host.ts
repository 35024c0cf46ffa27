import { mkdtemp, readFile, rm, symlink } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createPluginManager } from '@corral/manager'
import { parsePolicy } from '@corral/manifest'
import type { ResourcePolicy } from '@corral/types'
import { parse } from 'yaml'
import { type HostOptions, type RunningHost, startHost } from '../host.js'

export const appDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
export const examplesDir = path.resolve(appDir, '../../examples/plugins')
export const adminPassword = 'admin-password-for-tests'

/** Posts a sign-in to the JSON session of the host at `url`, as a client does: its answer. */
export function postSession(url: string, username: string, password: string): Promise<Response> {
  return fetch(`${url}/api/v1/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  })
}

/** Signs in on the host at `url` through the JSON session: the cookie header and CSRF token of later calls. */
export async function signInAt(
  url: string,
  username: string,
  password: string,
): Promise<{ cookie: string; csrf: string }> {
  const res = await postSession(url, username, password)
  if (res.status !== 200) throw new Error(`sign-in of ${username}: ${res.status} ${await res.text()}`)
  const cookie = res.headers
    .getSetCookie()
    .map((c) => c.split(';', 1)[0])
    .join('; ')
  return { cookie, csrf: ((await res.json()) as { csrfToken: string }).csrfToken }
}

/** A real host over some of the example plugins, in temp folders that `stop()` deletes. */
export interface TestHost extends RunningHost {
  /** Closes the host and deletes its folders. */
  stop(): Promise<void>
}

/**
 * Starts a host on a free port over the named example plugins (linked into a temp plugins folder),
 * with `policies.yaml`'s decisions for the plugins in `approved` and none for the others, which
 * stay pending review.
 */
export async function startTestHost(
  options: { plugins: string[]; approved: string[] } & Partial<HostOptions>,
): Promise<TestHost> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'corral-host-'))
  const pluginsDir = path.join(root, 'plugins')
  await import('node:fs/promises').then((fs) => fs.mkdir(pluginsDir))
  for (const name of options.plugins) await symlink(path.join(examplesDir, name), path.join(pluginsDir, name))
  const all = (parse(await readFile(path.join(appDir, 'policies.yaml'), 'utf8')) as unknown[]).map(
    parsePolicy,
  )
  const policies: ResourcePolicy[] = all.filter((p) => options.approved.includes(p.plugin))
  const { plugins: _plugins, approved: _approved, ...rest } = options
  const host = await startHost({
    dataDir: path.join(root, 'data'),
    pluginsDir,
    policies,
    hostVersion: '0.1.0',
    port: 0,
    adminPassword,
    templatesDir: path.join(appDir, 'templates'),
    createManager: createPluginManager,
    logLevel: 'warn',
    ...rest,
    server: { logger: false, ...rest.server },
  })
  return {
    ...host,
    async stop() {
      await host.close()
      await rm(root, { recursive: true, force: true })
    },
  }
}
