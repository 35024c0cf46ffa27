import { readFile, realpath, stat } from 'node:fs/promises'
import path from 'node:path'
import type { FieldError, Manifest } from '@corral/types'
import { PluginError } from '@corral/types'
import { fieldErrorsFromIssues, formatFieldErrors, readYaml } from './field-errors.js'
import { fromGoatKitForm } from './goatkit-form.js'
import { isInsideFolder } from './inside-folder.js'
import { manifestSchema } from './schema.js'

/** Manifests larger than this are refused before parsing. */
export const maxManifestBytes = 1 << 20

/** Options of {@link parseManifest}. */
export interface ParseManifestOptions {
  /** Where the text came from, for messages (a file path). */
  source?: string
}

function invalid(fields: FieldError[], source: string | undefined): PluginError {
  const where = source === undefined ? 'plugin.yaml' : source
  const count = fields.length === 1 ? '1 problem' : `${fields.length} problems`
  const list = formatFieldErrors(fields)
  return new PluginError('manifest_invalid', `${where} has ${count}:\n${list}`, { fields })
}

/** A parsed manifest, with the notes on how it was written. */
export interface ParsedManifest {
  manifest: Manifest
  /**
   * Fields written in another platform's form that were read as Corral's (GoatKit's top-level
   * `binary:`/`wasm:`, an `access` string), each with its line and what to write instead: warnings
   * to show (`corral validate` prints them, the manager logs them), never failures.
   */
  notes: FieldError[]
}

/**
 * Parses and validates the text of a `plugin.yaml` (JSON is YAML too). Fails with one
 * `PluginError('manifest_invalid')` whose `fields` list every problem with its line and column.
 *
 * @example
 * const manifest = parseManifest(await readFile('plugin.yaml', 'utf8'))
 */
export function parseManifest(text: string, options: ParseManifestOptions = {}): Manifest {
  return parseManifestWithNotes(text, options).manifest
}

/**
 * {@link parseManifest}, with the notes on fields written in GoatKit's form (see {@link ParsedManifest}).
 *
 * @example
 * const { manifest, notes } = parseManifestWithNotes('name: kv\nversion: 1.0.0\nbinary: kv\n')
 * // notes[0]: { field: 'binary', line: 3, message: "GoatKit's form, read as runtime: grpc and …" }
 */
export function parseManifestWithNotes(text: string, options: ParseManifestOptions = {}): ParsedManifest {
  if (typeof text !== 'string') {
    throw new PluginError('manifest_invalid', 'a manifest must be text', {
      fields: [{ field: '(root)', message: 'must be text' }],
    })
  }
  if (Buffer.byteLength(text) > maxManifestBytes) {
    throw invalid([{ field: '(root)', message: `is larger than ${maxManifestBytes} bytes` }], options.source)
  }
  const { value, doc, lines } = readYaml(text, (fields) => invalid(fields, options.source))
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw invalid(
      [
        {
          field: '(root)',
          message: 'must be a mapping of fields (name, version, runtime, ...)',
          line: 1,
          column: 1,
        },
      ],
      options.source,
    )
  }
  const form = fromGoatKitForm(value as Record<string, unknown>, { doc, lines })
  if (form.errors.length > 0) throw invalid(form.errors, options.source)
  const result = manifestSchema.safeParse(form.value)
  if (!result.success)
    throw invalid(fieldErrorsFromIssues(result.error.issues, manifestSchema, { doc, lines }), options.source)
  return { manifest: result.data, notes: form.notes }
}

/** The paths of a manifest that must resolve inside the plugin's folder, with their field paths. */
function manifestPaths(manifest: Manifest): Array<{ field: string; value: string }> {
  const entry = manifest.entry
  const paths =
    'wasm' in entry
      ? [{ field: 'entry.wasm', value: entry.wasm }]
      : 'binary' in entry
        ? [{ field: 'entry.binary', value: entry.binary }]
        : [{ field: 'entry.node', value: entry.node }]
  manifest.resources.permissions.forEach((perm, i) => {
    if (perm.type !== 'fs') return
    perm.scope.forEach((dir, j) => {
      paths.push({ field: `resources.permissions[${i}].scope[${j}]`, value: dir })
    })
  })
  return paths
}

/** The deepest existing ancestor of `target` (itself included), resolved through every link. */
async function realExistingAncestor(target: string): Promise<string> {
  let current = target
  for (;;) {
    try {
      return await realpath(current)
    } catch {
      const parent = path.dirname(current)
      if (parent === current) return current
      current = parent
    }
  }
}

/**
 * Refuses paths of `manifest` that resolve outside `dir` through symbolic links. (Text-level escapes,
 * `..` and absolute paths, are already refused by {@link parseManifest}.) Paths that do not exist
 * yet, such as a module the build has not produced, are checked through their existing ancestors.
 */
export async function checkManifestPaths(manifest: Manifest, dir: string, source?: string): Promise<void> {
  const root = await realpath(dir)
  const fields: FieldError[] = []
  for (const { field, value } of manifestPaths(manifest)) {
    const resolved = await realExistingAncestor(path.resolve(root, value))
    if (resolved !== root && !isInsideFolder(root, resolved)) {
      fields.push({ field, message: `resolves outside the plugin's folder (to ${resolved})` })
    }
  }
  if (fields.length > 0) throw invalid(fields, source)
}

/** A manifest read from disk, with the folder its paths are relative to. */
export interface LoadedManifest {
  manifest: Manifest
  /** The plugin's folder (the manifest file's folder). */
  dir: string
  /** The manifest file. */
  file: string
  /** Fields written in GoatKit's form (see {@link ParsedManifest}). */
  notes: FieldError[]
}

/** The hint for a missing `plugin.yaml` with a `plugin.yml` beside it (a common slip); else `''`. */
async function misnamedManifestHint(file: string): Promise<string> {
  if (path.basename(file) !== 'plugin.yaml') return ''
  const misnamed = path.join(path.dirname(file), 'plugin.yml')
  const found = await stat(misnamed).then(
    (s) => s.isFile(),
    () => false,
  )
  return found ? ' (there is a plugin.yml: did you mean plugin.yaml?)' : ''
}

/**
 * Reads, parses and checks a `plugin.yaml` file, or the `plugin.yaml` inside a folder.
 *
 * @example
 * const { manifest, dir } = await loadManifest('examples/plugins/hello-wasm')
 */
export async function loadManifest(fileOrDir: string): Promise<LoadedManifest> {
  let file = path.resolve(fileOrDir)
  let text: string
  try {
    if ((await stat(file)).isDirectory()) file = path.join(file, 'plugin.yaml')
    text = await readFile(file, 'utf8')
  } catch (cause) {
    throw new PluginError(
      'not_found',
      `cannot read manifest ${file}: ${(cause as Error).message}${await misnamedManifestHint(file)}`,
      { cause },
    )
  }
  const { manifest, notes } = parseManifestWithNotes(text, { source: file })
  const dir = path.dirname(file)
  await checkManifestPaths(manifest, dir, file)
  return { manifest, dir, file, notes }
}
