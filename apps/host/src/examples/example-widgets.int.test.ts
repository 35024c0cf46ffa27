import { mkdtemp, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadPolicies } from '@corral/manifest'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type DemoHost, startDemoHost } from '../testing/demo-host.js'

const appDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const examplesDir = path.resolve(appDir, '../../examples/plugins')
const examples = ['c-wasm', 'extism-as', 'go-kv', 'hello-grpc', 'hello-wasm', 'stats']

describe('the example plugins’ dashboard widgets, under the demo host and its policies', () => {
  let host: DemoHost
  let pluginsDir: string

  beforeAll(async () => {
    pluginsDir = await mkdtemp(path.join(tmpdir(), 'corral-widgets-'))
    for (const name of examples) await symlink(path.join(examplesDir, name), path.join(pluginsDir, name))
    host = await startDemoHost({
      pluginsDir,
      hostVersion: '0.1.0',
      policies: await loadPolicies(path.join(appDir, 'policies.yaml')),
      logger: { log() {} },
    })
  }, 60_000)

  afterAll(async () => {
    await host?.close()
    await rm(pluginsDir, { recursive: true, force: true })
  })

  it('loads every example, stats under its approved policy', async () => {
    const plugins = host.manager.list()
    expect(plugins.filter((p) => p.state === 'failed').map((p) => [p.name, p.lastError])).toEqual([])
    expect(
      plugins
        .filter((p) => p.state === 'running')
        .map((p) => p.name)
        .sort(),
    ).toEqual(examples)
    expect((await host.manager.policies.get('stats')).status).toBe('approved')
  })

  it.each([
    ['c-wasm', 'c-wasm-about', '<p>Word and vowel counts, written in C: POST <code>{"text": "..."}</code>'],
    ['extism-as', 'extism-vowels', '<p>Vowels counted so far: <strong>0</strong></p>'],
    ['go-kv', 'go-kv-about', "<p>Keys in the host's cache, written in Go:"],
    ['hello-wasm', 'hello', '<p>Hello from WebAssembly.</p>'],
    ['stats', 'stats-overview', '<dl class="stats-overview"><dt>Today</dt><dd>0</dd>'],
    ['stats', 'stats-chart', '<p class="stats-empty">No events yet.</p>'],
  ])('%s renders widget %s as HTML', async (name, id, html) => {
    const widget = host.manager.get(name)?.registration?.widgets.find((w) => w.id === id)
    expect(widget).toBeDefined()
    const rendered = await host.manager.call(name, widget?.handler as string, {})
    expect(typeof rendered).toBe('string')
    expect(rendered as string).toContain(html)
  })

  it('shows the Extism plugin’s running total in its widget', async () => {
    await host.manager.call('extism-as', 'count_vowels', 'Extism')
    const rendered = await host.manager.call('extism-as', 'widget', { widget: 'extism-vowels' })
    expect(rendered).toMatch(/^<p>Vowels counted so far: <strong>[1-9]\d*<\/strong><\/p>$/)
  })
})
