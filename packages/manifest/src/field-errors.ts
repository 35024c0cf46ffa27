import { type FieldError, formatFieldPath } from '@corral/types'
import { closest, distance } from 'fastest-levenshtein'
import { type Document, isMap, isScalar, LineCounter, type Node, parseDocument } from 'yaml'
import type { z } from 'zod'

type PathKey = string | number

/** Every problem on a line of its own, `  7:17 resources.call_timeout: must …` (position when known). */
export function formatFieldErrors(fields: readonly FieldError[]): string {
  return fields
    .map((f) => `  ${f.line === undefined ? '' : `${f.line}:${f.column ?? 1} `}${f.field}: ${f.message}`)
    .join('\n')
}

/** A YAML document's syntax errors, each with its line and column: why it cannot be read at all. */
function yamlSyntaxErrors(doc: Document): FieldError[] {
  return doc.errors.map((e) => {
    const pos = e.linePos?.[0]
    return {
      field: '(yaml)',
      message: e.message.split('\n')[0] ?? e.message,
      line: pos?.line,
      column: pos?.col,
    }
  })
}

/** A YAML (or JSON) text read for checking: its value, and the document and lines fields are placed by. */
export interface YamlRead {
  value: unknown
  doc: Document
  lines: LineCounter
}

/**
 * Reads `text` as one YAML document, duplicate keys refused and aliases expanded 50 times at most
 * (an alias bomb fails rather than fills memory). Syntax errors, with their lines, and a hostile
 * document fail as `invalid` makes the error of their field errors.
 */
export function readYaml(text: string, invalid: (fields: FieldError[]) => Error): YamlRead {
  const lines = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true })
  if (doc.errors.length > 0) throw invalid(yamlSyntaxErrors(doc))
  try {
    return { value: doc.toJS({ maxAliasCount: 50 }), doc, lines }
  } catch (cause) {
    throw invalid([{ field: '(yaml)', message: (cause as Error).message }])
  }
}

/** The keys an object schema at `path` accepts, looking through wrappers, arrays and records. */
function knownKeysAt(schema: z.ZodType, path: readonly PathKey[]): string[] {
  let current: z.ZodType | undefined = schema
  let i = 0
  while (current !== undefined) {
    const def = current.def as unknown as Record<string, unknown> & { type: string }
    switch (def.type) {
      case 'optional':
      case 'nullable':
      case 'default':
      case 'prefault':
      case 'readonly':
        current = def.innerType as z.ZodType
        continue
      case 'pipe':
        current = def.in as z.ZodType
        continue
      case 'lazy':
        current = (def.getter as () => z.ZodType)()
        continue
    }
    if (i === path.length) {
      return def.type === 'object' ? Object.keys(def.shape as object) : []
    }
    const key = path[i++]
    if (def.type === 'object') current = (def.shape as Record<string, z.ZodType>)[String(key)]
    else if (def.type === 'array') current = def.element as z.ZodType
    else if (def.type === 'record') current = def.valueType as z.ZodType
    else return []
  }
  return []
}

/** A "did you mean" suggestion for a misspelt key, when one is close enough to be a likely typo. */
function suggestKey(key: string, known: readonly string[]): string | undefined {
  if (known.length === 0) return undefined
  const best = closest(key, known as string[])
  return distance(key, best) <= Math.max(2, Math.floor(best.length / 3)) ? best : undefined
}

/**
 * Fields written where they do nothing, by dotted path, and where they belong: their message says so
 * rather than guess a sibling. `provides.permissions` grants nothing; what a plugin asks of the host
 * (and an administrator may grant) is `resources.permissions`.
 */
const misplacedFields: Record<string, string> = {
  'provides.permissions': 'resources.permissions',
}

/**
 * Where a field is in the YAML source: the node at `path` (its key with `keyNode`), or its nearest
 * ancestor that exists.
 */
export function positionOf(
  doc: Document,
  lines: LineCounter,
  path: readonly PathKey[],
  keyNode = false,
): { line?: number; column?: number } {
  for (let depth = path.length; depth >= 0; depth--) {
    let node: Node | undefined
    if (keyNode && depth === path.length && depth > 0) {
      const parent = doc.getIn(path.slice(0, -1), true)
      if (isMap(parent)) {
        const pair = parent.items.find((p) => isScalar(p.key) && p.key.value === path[path.length - 1])
        node = isScalar(pair?.key) ? pair.key : undefined
      }
    } else {
      const found = depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth), true)
      node = found !== null && typeof found === 'object' && 'range' in found ? (found as Node) : undefined
    }
    const start = node?.range?.[0]
    if (start !== undefined) {
      const pos = lines.linePos(start)
      return { line: pos.line, column: pos.col }
    }
  }
  return {}
}

/**
 * Every zod issue as a {@link FieldError}: dotted path, message, and (with a YAML document) the
 * line and column of the field. Unknown keys become one error each, with a suggestion.
 */
export function fieldErrorsFromIssues(
  issues: readonly z.core.$ZodIssue[],
  schema: z.ZodType,
  source?: { doc: Document; lines: LineCounter },
): FieldError[] {
  const errors: FieldError[] = []
  const add = (path: readonly PathKey[], message: string, keyNode = false) => {
    const error: FieldError = { field: formatFieldPath(path) || '(root)', message }
    if (source !== undefined) Object.assign(error, positionOf(source.doc, source.lines, path, keyNode))
    errors.push(error)
  }
  for (const issue of issues) {
    const path = issue.path.filter((k): k is PathKey => typeof k !== 'symbol')
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeysAt(schema, path)
      for (const key of issue.keys) {
        const belongs = misplacedFields[formatFieldPath([...path, key])]
        if (belongs !== undefined) {
          add(
            [...path, key],
            `is not a known field (did you mean "${belongs}"?): permissions listed here grant nothing`,
            true,
          )
          continue
        }
        const suggestion = suggestKey(key, known)
        add(
          [...path, key],
          `is not a known field${suggestion === undefined ? '' : ` (did you mean "${suggestion}"?)`}`,
          true,
        )
      }
    } else {
      add(path, issue.message)
    }
  }
  return errors.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0))
}
