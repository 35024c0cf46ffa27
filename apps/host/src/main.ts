import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createPluginManager } from '@corral/manager'
import { loadPolicies } from '@corral/manifest'
import { isPluginError } from '@corral/types'
import { type RunningHost, startHost } from './host.js'
import { parsePluginUser } from './plugin-user.js'
import { pluginSummaryLines } from './startup-summary.js'

/** The host's own version: what plugins' `min_host_version` ranges are checked against. */
const hostVersion = '0.1.0'

const appDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const env = (name: string) => (process.env[name] === '' ? undefined : process.env[name])
const pluginsDir = env('CORRAL_PLUGINS_DIR') ?? path.resolve(appDir, '../../examples/plugins')
const policiesFile = env('CORRAL_POLICIES') ?? path.join(appDir, 'policies.yaml')
const databaseUrl = env('DATABASE_URL')
const redisUrl = env('REDIS_URL')
const adminPassword = env('CORRAL_ADMIN_PASSWORD')
const pluginUser = env('CORRAL_PLUGIN_USER')

/**
 * Ends a start-up that failed. A `PluginError` is the operator's to mend (a policies file with a
 * typo): its `✗ [code] message`, which lists its problems, without a stack. Anything else is a bug,
 * printed with its stack.
 */
function failStartUp(error: unknown): never {
  console.error(isPluginError(error) ? `✗ ${error.message}` : error)
  process.exit(1)
}

let host: RunningHost
try {
  host = await startHost({
    dataDir: env('CORRAL_DATA_DIR') ?? path.join(appDir, '.data'),
    pluginsDir,
    policies: await loadPolicies(policiesFile),
    hostVersion,
    ...(databaseUrl === undefined ? {} : { databaseUrl }),
    ...(redisUrl === undefined ? {} : { redisUrl }),
    port: Number(env('PORT') ?? 8080),
    listenHost: env('HOST') ?? '127.0.0.1',
    ...(adminPassword === undefined ? {} : { adminPassword }),
    ...(pluginUser === undefined ? {} : { pluginUser: parsePluginUser(pluginUser) }),
    templatesDir: path.join(appDir, 'templates'),
    createManager: createPluginManager,
    server: { secureCookies: env('CORRAL_SECURE_COOKIES') === '1' },
  })
} catch (error) {
  failStartUp(error)
}

// Before the summary is printed: whoever reads it may stop the host at once.
let stopping = false
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return
    stopping = true
    console.log(`${signal}: stopping (requests under way finish, then the plugins stop)`)
    host.close().then(
      () => process.exit(0),
      (error) => {
        console.error(error)
        process.exit(1)
      },
    )
  })
}

const lines = [`\nCorral host ${hostVersion} is running at ${host.url}`, `  plugins:  ${pluginsDir}`]
lines.push(...(await pluginSummaryLines(host.manager)))
if (host.firstAdmin?.generatedPassword !== undefined)
  lines.push(
    `  Sign in as "admin" with password ${host.firstAdmin.generatedPassword}`,
    '  (shown this once; set CORRAL_ADMIN_PASSWORD before the first start to choose it)',
  )
else if (host.firstAdmin !== undefined)
  lines.push('  Sign in as "admin" with the password in CORRAL_ADMIN_PASSWORD')
else lines.push('  Sign in with your account (the first administrator is "admin")')
lines.push('  Ctrl-C stops it.\n')
console.log(lines.join('\n'))
