import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { createGrpcRunner } from '@corral/grpc-runner'
import { effectiveGrant, loadManifest, parsePolicy, validateConfig } from '@corral/manifest'
import type { FieldError, Manifest, Runner } from '@corral/types'
import { isPluginError, PluginError } from '@corral/types'
import { createWasmRunner } from '@corral/wasm-runner'
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

/**
 * Places config errors (JSON pointers into the merged config, `/smtp/port`) on the line of the
 * manifest's `config` value they are about, or of `config` / `config_schema` when the value comes
 * from a default.
 */
function placeConfigErrors(fields: FieldError[], text: string): FieldError[] {
  const lines = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lines })
  const lineOf = (keys: readonly string[]) => {
    for (let depth = keys.length; depth > 0; depth--) {
      const node = doc.getIn(keys.slice(0, depth), true) as { range?: [number, number, number] } | undefined
      const start = node?.range?.[0]
      if (start !== undefined) return lines.linePos(start)
    }
    return undefined
  }
  return fields.map((f) => {
    const pointer = f.field.startsWith('/') ? f.field.split('/').slice(1) : []
    const place =
      f.field === 'config_schema'
        ? lineOf(['config_schema'])
        : (lineOf(['config', ...pointer]) ?? lineOf(['config_schema']))
    const field = f.field.startsWith('/')
      ? `config${f.field.replaceAll('/', '.').replace(/\.$/, '')}`
      : f.field
    return place === undefined ? { ...f, field } : { ...f, field, line: place.line, column: place.col }
  })
}

/** Loads the built plugin with its runtime's runner and checks what `register()` returns against the manifest. */
async function checkRegistration(manifest: Manifest, dir: string): Promise<CheckResult> {
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
      await plugin.register()
    } finally {
      await plugin.shutdown().catch(() => {})
    }
    return { what, fields: [] }
  } catch (error) {
    return { what, fields: fieldsOf(error) }
  } finally {
    await runner.close()
  }
}

/**
 * `corral validate [dir]`: the manifest, the config against its schema (defaults included) and, once
 * built, the plugin's registration against the manifest. Every problem is printed at once, with its
 * line where it has one; any problem fails the command. Fields written in GoatKit's form are printed
 * as notes (with what to write instead), which fail nothing.
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
  const config: CheckResult = { what: 'config', fields: [] }
  try {
    validateConfig(manifest)
  } catch (error) {
    config.fields = placeConfigErrors(fieldsOf(error), await readFile(file, 'utf8'))
  }
  report(file, [{ what: 'manifest', fields: [] }, config, await checkRegistration(manifest, folder)])
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
