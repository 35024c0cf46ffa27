import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { createGrpcRunner } from '@corral/grpc-runner'
import { checkHostVersion, effectiveGrant, loadManifest, parsePolicy, validateConfig } from '@corral/manifest'
import type { FieldError, Manifest, Registration, Runner } from '@corral/types'
import { isPluginError, PluginError } from '@corral/types'
import { createWasmRunner, readModuleInfo } from '@corral/wasm-runner'
import { LineCounter, parseDocument } from 'yaml'
import { hostVersion } from '../host-version.js'
import { cliLogger, colors } from '../output.js'
import { resolvePluginFolder } from '../plugin-folder.js'
import { entryPath } from '../plugin-session.js'
import { requestedPolicy } from '../requested-policy.js'

/** What one check found: its problems, with the field paths they are about. */
interface CheckResult {
  what: string
  fields: FieldError[]
  /** Set when the check did not run, with the reason. */
  skipped?: string
}

function fieldsOf(error: unknown): FieldError[] {
  const failure = PluginError.from(error, 'internal')
  return failure.fields.length > 0 ? [...failure.fields] : [{ field: '(plugin)', message: failure.message }]
}

/** Where a field of the manifest is: its line and column. */
type Place = { line: number; column: number }

/**
 * The places of the manifest's fields: `at(keys)` is where the field at `keys` is written, or
 * (with `nearest`) its nearest ancestor that is written.
 */
function manifestPlaces(text: string) {
  const lines = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lines })
  return {
    at(keys: readonly (string | number)[], nearest = false): Place | undefined {
      for (let depth = keys.length; depth > 0; depth--) {
        const node = doc.getIn(keys.slice(0, depth), true) as { range?: [number, number, number] } | undefined
        const start = node?.range?.[0]
        if (start !== undefined) {
          const { line, col } = lines.linePos(start)
          return { line, column: col }
        }
        if (!nearest) return undefined
      }
      return undefined
    },
    /** The value the manifest writes at `keys`. */
    value: (keys: readonly (string | number)[]): unknown => doc.getIn(keys),
  }
}
type ManifestPlaces = ReturnType<typeof manifestPlaces>

/**
 * Places config errors (JSON pointers into the merged config, `/smtp/port`) on the line of the
 * manifest's `config` value they are about, or of `config` / `config_schema` when the value comes
 * from a default.
 */
function placeConfigErrors(fields: FieldError[], places: ManifestPlaces): FieldError[] {
  return fields.map((f) => {
    const pointer = f.field.startsWith('/') ? f.field.split('/').slice(1) : []
    const place =
      f.field === 'config_schema'
        ? places.at(['config_schema'], true)
        : (places.at(['config', ...pointer], true) ?? places.at(['config_schema'], true))
    const field = f.field.startsWith('/')
      ? `config${f.field.replaceAll('/', '.').replace(/\.$/, '')}`
      : f.field
    return place === undefined ? { ...f, field } : { ...f, field, ...place }
  })
}

/** Whether this host (the CLI's version) satisfies the manifest's `min_host_version`. */
function checkHostVersionOf(manifest: Manifest, places: ManifestPlaces): CheckResult {
  const what = 'host version'
  try {
    checkHostVersion(manifest, hostVersion)
    return { what, fields: [] }
  } catch (error) {
    const failure = PluginError.from(error)
    const field = 'min_host_version'
    const message = `[${failure.code}] ${failure.rawMessage}`
    return { what, fields: [{ field, message, ...places.at([field]) }] }
  }
}

/** A registration's check, and the registration when the plugin gave a valid one. */
interface RegistrationCheck extends CheckResult {
  registration?: Registration
}

/** Loads the built plugin with its runtime's runner and checks what `register()` returns against the manifest. */
async function checkRegistration(manifest: Manifest, dir: string): Promise<RegistrationCheck> {
  const what = 'registration'
  const entry = entryPath(manifest)
  if (!existsSync(path.join(dir, entry))) return { what, fields: [], skipped: `${entry} is not built yet` }
  const logger = cliLogger(false)
  const runner: Runner =
    manifest.runtime === 'wasm' ? createWasmRunner({ logger }) : createGrpcRunner({ hostVersion, logger })
  try {
    const plugin = await runner.load({
      manifest,
      dir,
      grant: effectiveGrant(manifest.resources, parsePolicy(requestedPolicy(manifest))),
      hostApi: async () => {
        throw new PluginError('unavailable', 'corral validate serves no host calls')
      },
    })
    try {
      return { what, fields: [], registration: await plugin.register() }
    } finally {
      await plugin.shutdown().catch(() => {})
    }
  } catch (error) {
    return { what, fields: fieldsOf(error) }
  } finally {
    await runner.close()
  }
}

/** The lists of a registration whose entries name a plugin function as their `handler`. */
const handlerLists = ['routes', 'widgets', 'jobs', 'events'] as const

/**
 * Whether every handler the registration names (routes, widgets, jobs, events) is a function the
 * WASM module exports; each one that is not is a problem, on its line when `provides` of the
 * manifest names it. A gRPC plugin's registration does not list its functions: not checked.
 */
async function checkHandlers(
  manifest: Manifest,
  dir: string,
  registration: Registration,
  places: ManifestPlaces,
): Promise<CheckResult> {
  const what = 'handlers'
  if (manifest.runtime !== 'wasm') {
    return { what, fields: [], skipped: "a gRPC plugin's registration does not list its functions" }
  }
  const entry = entryPath(manifest)
  const { exports } = readModuleInfo(await readFile(path.join(dir, entry)))
  const exported = new Set(exports.filter((e) => e.kind === 'function').map((e) => e.name))
  const fields: FieldError[] = []
  for (const list of handlerLists) {
    registration[list]?.forEach(({ handler }, i) => {
      if (exported.has(handler)) return
      const keys = ['provides', list, i, 'handler']
      const written = places.value(keys) === handler
      fields.push({
        field: written ? `provides.${list}[${i}].handler` : `${list}[${i}].handler`,
        message: `[unimplemented] ${handler} is not a function ${entry} exports`,
        ...(written ? places.at(keys) : {}),
      })
    })
  }
  return { what, fields }
}

/**
 * `corral validate [dir]`: the manifest, the config against its schema (defaults included), the
 * manifest's `min_host_version` against this host and, once built, the plugin's registration
 * against the manifest and the handlers it names against the module's exports. Every problem is
 * printed at once, with its line where it has one; any problem fails the command. A manifest that
 * cannot be read fails as in every command. Fields written in GoatKit's form are printed as notes
 * (with what to write instead), which fail nothing.
 */
export async function validateCommand(dir: string): Promise<void> {
  const folder = await resolvePluginFolder(dir)
  const file = path.join(folder, 'plugin.yaml')
  let loaded: Awaited<ReturnType<typeof loadManifest>>
  try {
    loaded = await loadManifest(folder)
  } catch (error) {
    // A manifest that cannot be read at all fails as in every command; its problems are listed.
    if (!isPluginError(error) || error.code !== 'manifest_invalid') throw error
    return report(file, [{ what: 'manifest', fields: fieldsOf(error) }])
  }
  const { manifest, notes } = loaded
  for (const note of notes) {
    const where = note.line === undefined ? '' : `${note.line}:${note.column ?? 1} `
    process.stdout.write(`${colors.yellow('!')} ${where}${note.field}: ${note.message}\n`)
  }
  const places = manifestPlaces(await readFile(file, 'utf8'))
  const config: CheckResult = { what: 'config', fields: [] }
  try {
    validateConfig(manifest)
  } catch (error) {
    config.fields = placeConfigErrors(fieldsOf(error), places)
  }
  const registration = await checkRegistration(manifest, folder)
  report(file, [
    { what: 'manifest', fields: [] },
    config,
    checkHostVersionOf(manifest, places),
    registration,
    ...(registration.registration === undefined
      ? []
      : [await checkHandlers(manifest, folder, registration.registration, places)]),
  ])
}

/** Prints each check and its problems; throws (exit code 1) when there is any. */
function report(file: string, results: CheckResult[]): void {
  const problems = results.flatMap((r) => r.fields.map((f) => ({ ...f, what: r.what })))
  for (const result of results) {
    if (result.skipped !== undefined)
      process.stdout.write(`${colors.yellow('-')} ${result.what}: not checked, ${result.skipped}\n`)
    else if (result.fields.length === 0) process.stdout.write(`${colors.green('✓')} ${result.what}\n`)
  }
  if (problems.length === 0) return
  const lines = problems
    .sort((a, b) => (a.line ?? Number.MAX_SAFE_INTEGER) - (b.line ?? Number.MAX_SAFE_INTEGER))
    .map(
      (p) =>
        `  ${p.line === undefined ? '' : `${p.line}:${p.column ?? 1} `}${p.field}: ${p.message} ${colors.dim(`(${p.what})`)}`,
    )
  const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`
  throw new PluginError('manifest_invalid', `${file} has ${count}:\n${lines.join('\n')}`)
}
