import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { LogLevel } from '@corral/types'
import { isPluginError } from '@corral/types'
import { type DemoHost, startDemoHost } from './demo-host.js'
import { readPolicies } from './read-policies.js'

/** The host's own version: what plugins' `min_host_version` ranges are checked against. */
const hostVersion = '0.1.0'

const appDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const pluginsDir = process.env.CORRAL_PLUGINS_DIR ?? path.resolve(appDir, '../../examples/plugins')
const policiesFile = process.env.CORRAL_POLICIES ?? path.join(appDir, 'policies.yaml')

const shown: ReadonlySet<LogLevel> = new Set(['info', 'warn', 'error'])
const logger = {
  log(level: LogLevel, message: string, fields: Record<string, unknown> = {}) {
    if (shown.has(level)) console.log(`    [${level}] ${message} ${JSON.stringify(fields)}`)
  },
}

/** One call of the tour: its result, or its error code and message. */
async function tryCall(host: DemoHost, plugin: string, fn: string, args: unknown): Promise<void> {
  if (host.manager.get(plugin)?.state !== 'running') return
  try {
    const result = await host.manager.call(plugin, fn, args, { token: `tour-${plugin}-${fn}` })
    console.log(`  ${plugin}.${fn}(${JSON.stringify(args)}) → ${JSON.stringify(result)}`)
  } catch (error) {
    const code = isPluginError(error) ? error.code : 'internal'
    console.log(
      `  ${plugin}.${fn}(${JSON.stringify(args)}) ✗ ${code}: ${isPluginError(error) ? error.rawMessage : error}`,
    )
  }
}

console.log(`Corral demo host ${hostVersion}\n  plugins:  ${pluginsDir}\n  policies: ${policiesFile}\n`)
const host = await startDemoHost({
  pluginsDir,
  hostVersion,
  policies: await readPolicies(policiesFile),
  logger,
})

const plugins = host.manager.list()
for (const { name, version, runtime, state, policy, registration, lastError } of plugins) {
  if (state !== 'running' || registration === undefined) {
    console.log(`✗ ${name}: ${lastError?.message.split('\n')[0] ?? state}`)
    continue
  }
  const provides = [
    registration.routes.length > 0 ? `${registration.routes.length} routes` : '',
    registration.widgets.length > 0 ? `${registration.widgets.length} widgets` : '',
  ].filter(Boolean)
  console.log(
    `✓ ${name} ${version} [${runtime}] policy: ${policy?.status}; ${provides.join(', ') || 'no routes'}`,
  )
}

console.log('\nA short tour:')
await tryCall(host, 'hello-wasm', 'greet', { name: 'Ada' })
await tryCall(host, 'hello-wasm', 'greet', { name: 'Ada' })
await tryCall(host, 'hello-wasm', 'greet', {})
await tryCall(host, 'c-wasm', 'count', { text: 'Plugins, sandboxed and fast' })
await tryCall(host, 'hello-grpc', 'greet', { name: 'Grace' })
await tryCall(host, 'hello-grpc', 'addNote', { day: '2026-11-22', text: 'shipped the demo' })
await tryCall(host, 'hello-grpc', 'stats', {})
await tryCall(host, 'go-kv', 'set', { key: 'colour', value: 'teal' })

const refusals = await host.manager.hostApi.audit.list({})
console.log(`\nRefused host calls (audit log): ${refusals.length}`)
for (const entry of refusals) console.log(`  ${JSON.stringify(entry)}`)

await host.close()
if (!plugins.some((p) => p.state === 'running')) process.exitCode = 1
