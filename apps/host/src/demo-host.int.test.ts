import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadPolicies } from '@corral/manifest'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type DemoHost, startDemoHost } from './testing/demo-host.js'

const appDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const examplesDir = path.resolve(appDir, '../../examples/plugins')
const quiet = { log() {} }
/** What the host logged at warn or above. */
const warnings: Array<{ message: string; fields?: Record<string, unknown> }> = []
const keepWarnings = {
  log(level: string, message: string, fields?: Record<string, unknown>) {
    if (level === 'warn' || level === 'error')
      warnings.push({ message, ...(fields === undefined ? {} : { fields }) })
  },
}

/** The plugins in `state`, by name. */
function namesIn(host: DemoHost, state: string): string[] {
  return host.manager
    .list()
    .filter((p) => p.state === state)
    .map((p) => p.name)
    .sort()
}

/** The failed plugins, each with its error code. */
function failures(host: DemoHost): Array<[string, string | undefined]> {
  return host.manager
    .list()
    .filter((p) => p.state === 'failed')
    .map((p): [string, string | undefined] => [p.name, p.lastError?.code])
    .sort((a, b) => a[0].localeCompare(b[0]))
}

describe('the demo host over the example plugins (real workers and processes)', () => {
  let host: DemoHost
  let pluginsDir: string

  beforeAll(async () => {
    // The examples, plus a folder whose manifest is broken (it must not stop the others) and a
    // folder with no manifest at all (no plugin: skipped, with a warning).
    pluginsDir = await mkdtemp(path.join(tmpdir(), 'corral-demo-'))
    for (const name of ['hello-wasm', 'hello-grpc', 'c-wasm', 'go-kv', 'extism-as']) {
      await symlink(path.join(examplesDir, name), path.join(pluginsDir, name))
    }
    await symlink(path.join(appDir, 'src'), path.join(pluginsDir, 'not-a-plugin'))
    await mkdir(path.join(pluginsDir, 'broken'))
    await writeFile(path.join(pluginsDir, 'broken/plugin.yaml'), 'name: broken\nruntime: cobol\n')
    host = await startDemoHost({
      pluginsDir,
      hostVersion: '0.1.0',
      policies: await loadPolicies(path.join(appDir, 'policies.yaml')),
      logger: keepWarnings,
    })
  }, 60_000)

  afterAll(async () => {
    await host?.close()
    await rm(pluginsDir, { recursive: true, force: true })
  })

  it('runs every example, reports the broken folder, and skips the folder without a manifest with a warning', () => {
    expect(namesIn(host, 'running')).toEqual(['c-wasm', 'extism-as', 'go-kv', 'hello-grpc', 'hello-wasm'])
    expect(failures(host)).toEqual([['broken', 'manifest_invalid']])
    expect(warnings).toContainEqual({
      message: expect.stringMatching(/has no plugin\.yaml.*skipped/),
      fields: { folder: path.join(pluginsDir, 'not-a-plugin') },
    })
  })

  it('serves a WASM plugin through the sandboxed cache, counting per name', async () => {
    const greet = (args: unknown) => host.manager.call('hello-wasm', 'greet', args)
    const first = (await greet({ name: 'Lin' })) as { count: number; message: string }
    const second = (await greet({ name: 'Lin' })) as { count: number }
    expect(first.message).toBe('Hello, Lin!')
    expect(second.count).toBe(first.count + 1)
    await expect(greet({ name: '' })).rejects.toMatchObject({ code: 'hello-wasm:missing_name' })
    await expect(greet({})).rejects.toMatchObject({ code: 'invalid_argument' })
  })

  it('serves a gRPC plugin whose notes live in its own SQLite table', async () => {
    const grpc = (fn: string, args: unknown) => host.manager.call('hello-grpc', fn, args)
    await grpc('addNote', { day: '2026-11-22', text: 'a' })
    await grpc('addNote', { day: '2026-11-22', text: 'b' })
    expect(await grpc('stats', {})).toEqual({ days: [{ day: '2026-11-22', notes: 2 }] })
  })

  it('refuses and audits what a restricted plugin was not granted', async () => {
    expect((await host.manager.policies.get('go-kv')).status).toBe('restricted')
    await expect(host.manager.call('go-kv', 'set', { key: 'k', value: 'v' })).rejects.toMatchObject({
      code: 'permission_denied',
    })
    const audit = await host.manager.hostApi.audit.list({ plugin: 'go-kv' })
    expect(audit.some((entry) => entry.method === 'cache.set' && entry.code === 'permission_denied')).toBe(
      true,
    )
  })

  it('runs the C plugin under its approved policy', async () => {
    expect(await host.manager.call('c-wasm', 'count', { text: 'one two' })).toMatchObject({
      words: 2,
    })
  })

  it('runs an unmodified Extism plugin under its approved policy, its var kept across calls', async () => {
    const count = (text: string) => host.manager.call('extism-as', 'count_vowels', text)
    expect(await count('Hello')).toEqual({ count: 2, total: 2, vowels: 'aeiouAEIOU' })
    expect(await count('Extism')).toEqual({ count: 2, total: 4, vowels: 'aeiouAEIOU' })
    expect(await host.manager.call('extism-as', 'greet', 'Lin')).toBe('Hello, Lin!')
    await expect(host.manager.call('extism-as', 'fail', 'x')).rejects.toMatchObject({ code: 'plugin_error' })
  })
})

describe('two plugin folders declaring one name (real folders, real workers)', () => {
  it('loads neither and reports both, while the other plugins run', async () => {
    const pluginsDir = await mkdtemp(path.join(tmpdir(), 'corral-twins-'))
    let host: DemoHost | undefined
    try {
      await symlink(path.join(examplesDir, 'hello-wasm'), path.join(pluginsDir, 'hello-wasm'))
      await symlink(path.join(examplesDir, 'c-wasm'), path.join(pluginsDir, 'c-wasm'))
      // Another plugin's code under hello-wasm's name: it would run under hello-wasm's approved policy.
      const impostor = path.join(pluginsDir, 'impostor')
      await cp(path.join(examplesDir, 'c-wasm', 'build'), path.join(impostor, 'build'), { recursive: true })
      const yaml = await readFile(path.join(examplesDir, 'c-wasm', 'plugin.yaml'), 'utf8')
      await writeFile(path.join(impostor, 'plugin.yaml'), yaml.replace(/^name: c-wasm$/m, 'name: hello-wasm'))
      host = await startDemoHost({
        pluginsDir,
        hostVersion: '0.1.0',
        policies: await loadPolicies(path.join(appDir, 'policies.yaml')),
        logger: quiet,
      })
      expect(namesIn(host, 'running')).toEqual(['c-wasm'])
      expect(failures(host)).toEqual([
        ['hello-wasm', 'already_exists'],
        ['impostor', 'already_exists'],
      ])
    } finally {
      await host?.close()
      await rm(pluginsDir, { recursive: true, force: true })
    }
  }, 60_000)
})
