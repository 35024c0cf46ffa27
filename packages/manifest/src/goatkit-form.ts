import { type FieldError, formatFieldPath } from '@corral/types'
import type { Document, LineCounter } from 'yaml'
import { positionOf } from './field-errors.js'

/** A manifest value in Corral's form, with a note for each GoatKit field read as Corral's. */
export interface CorralForm {
  value: Record<string, unknown>
  notes: FieldError[]
  /** GoatKit fields that cannot be read as Corral's: ambiguous, or contradicting `runtime`. */
  errors: FieldError[]
}

/** The lists GoatKit's access strings stand for. */
const accessLists: Readonly<Record<string, readonly string[]>> = {
  read: ['read'],
  write: ['write'],
  readwrite: ['read', 'write'],
}

/** The runtime each GoatKit entry field implies. */
const entryRuntimes = { binary: 'grpc', wasm: 'wasm' } as const

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

/**
 * Reads a `plugin.yaml` written in GoatKit's form as Corral's: a top-level `binary:` (a gRPC
 * executable) or `wasm:` (a module path; Corral's `wasm:` is a mapping of options) instead of
 * `runtime` + `entry`, and a permission's `access` as one string (`read`, `write`, `readwrite`)
 * instead of a list. Each such field is a note, placed on its line, saying what to write instead.
 * A GoatKit entry beside Corral's `entry`, beside the other GoatKit entry, or contradicting
 * `runtime` is an error: which one is meant is not clear.
 */
export function fromGoatKitForm(
  value: Record<string, unknown>,
  source?: { doc: Document; lines: LineCounter },
): CorralForm {
  const form: CorralForm = { value: { ...value }, notes: [], errors: [] }
  const at = (path: Array<string | number>, message: string): FieldError => ({
    field: formatFieldPath(path),
    message,
    ...(source === undefined ? {} : positionOf(source.doc, source.lines, path, true)),
  })
  const out = form.value

  const kinds = (['binary', 'wasm'] as const).filter((k) => typeof out[k] === 'string')
  const [kind, other] = kinds
  if (other !== undefined) {
    form.errors.push(
      at([other], 'a plugin has one entry: binary (a gRPC executable) or wasm (a module), not both'),
    )
  } else if (kind !== undefined) {
    const runtime = entryRuntimes[kind]
    if (out.entry !== undefined) {
      form.errors.push(
        at([kind], `names the plugin's entry as entry does: keep entry.${kind} or ${kind}, not both`),
      )
    } else if (out.runtime !== undefined && out.runtime !== runtime) {
      form.errors.push(at([kind], `names a ${runtime} entry, but runtime is ${String(out.runtime)}`))
    } else {
      form.notes.push(
        at(
          [kind],
          `GoatKit's form, read as runtime: ${runtime} and entry: { ${kind}: ${String(out[kind])} }; write those instead`,
        ),
      )
      out.runtime = runtime
      out.entry = { [kind]: out[kind] }
      delete out[kind]
    }
  }

  const resources = out.resources
  if (isRecord(resources) && Array.isArray(resources.permissions)) {
    const permissions = resources.permissions.map((perm: unknown, i) => {
      if (!isRecord(perm) || typeof perm.access !== 'string') return perm
      const path = ['resources', 'permissions', i, 'access']
      const list = accessLists[perm.access]
      if (list === undefined) {
        form.errors.push(
          at(path, "must be a list of read and write (or, in GoatKit's form, read, write or readwrite)"),
        )
        return perm
      }
      form.notes.push(at(path, `GoatKit's form, read as access: [${list.join(', ')}]; write that instead`))
      return { ...perm, access: [...list] }
    })
    out.resources = { ...resources, permissions }
  }
  return form
}
