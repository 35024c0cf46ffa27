import { readFile } from 'node:fs/promises'
import type { FieldError, ResourcePolicy } from '@corral/types'
import { PluginError } from '@corral/types'
import { z } from 'zod'
import { fieldErrorsFromIssues, formatFieldErrors, positionOf, readYaml } from './field-errors.js'
import { parsePolicy } from './parse-policy.js'
import { policyInputSchema } from './schema.js'

/** Options of {@link parsePolicies}. */
export interface ParsePoliciesOptions {
  /** Where the text came from, for messages (a file path). */
  source?: string
}

const policyListSchema = z.array(policyInputSchema)

function invalid(fields: FieldError[], source: string | undefined): PluginError {
  const count = fields.length === 1 ? '1 problem' : `${fields.length} problems`
  return new PluginError(
    'invalid_argument',
    `${source ?? 'the policies'} has ${count}:\n${formatFieldErrors(fields)}`,
    { fields },
  )
}

/**
 * Parses the text of a policies file: one policy (a mapping, as `corral policy` prints it) or a
 * list of them; a file with no document (comments only) holds none. Fails with one
 * `PluginError('invalid_argument')` whose `fields` list every problem with its line and column,
 * a plugin named by two entries included (which of them would win is not the reader's guess).
 *
 * @example
 * const policies = parsePolicies(await readFile('policies.yaml', 'utf8'), { source: 'policies.yaml' })
 */
export function parsePolicies(text: string, options: ParsePoliciesOptions = {}): ResourcePolicy[] {
  const { value, doc, lines } = readYaml(text, (fields) => invalid(fields, options.source))
  if (value === null || value === undefined) return []
  const schema = Array.isArray(value) ? policyListSchema : policyInputSchema
  const result = schema.safeParse(value)
  if (!result.success) {
    throw invalid(fieldErrorsFromIssues(result.error.issues, schema, { doc, lines }), options.source)
  }
  const entries: unknown[] = Array.isArray(value) ? value : [value]
  const policies = entries.map((entry) => parsePolicy(entry))
  const first = new Map<string, number>()
  const repeated: FieldError[] = []
  policies.forEach((policy, i) => {
    const earlier = first.get(policy.plugin)
    if (earlier === undefined) first.set(policy.plugin, i)
    else {
      repeated.push({
        field: `[${i}].plugin`,
        message: `${policy.plugin} has a policy already, in entry ${earlier + 1}`,
        ...positionOf(doc, lines, [i, 'plugin']),
      })
    }
  })
  if (repeated.length > 0) throw invalid(repeated, options.source)
  return policies
}

/**
 * Reads and parses a policies file (see {@link parsePolicies}); one that cannot be read fails with
 * `not_found`, naming it.
 *
 * @example
 * const policies = await loadPolicies(process.env.CORRAL_POLICIES ?? 'policies.yaml')
 */
export async function loadPolicies(file: string): Promise<ResourcePolicy[]> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (cause) {
    throw new PluginError('not_found', `cannot read policies ${file}: ${(cause as Error).message}`, { cause })
  }
  return parsePolicies(text, { source: file })
}
