import { z } from 'zod'
import { manifestSchema } from '../schema.js'

/** A JSON Schema node, as `z.toJSONSchema` writes them. */
export interface JsonSchemaNode {
  type?: string
  description?: string
  default?: unknown
  examples?: unknown[]
  enum?: unknown[]
  const?: unknown
  pattern?: string
  minimum?: number
  maximum?: number
  minLength?: number
  maxLength?: number
  minItems?: number
  properties?: Record<string, JsonSchemaNode>
  required?: string[]
  additionalProperties?: boolean | JsonSchemaNode
  items?: JsonSchemaNode
  anyOf?: JsonSchemaNode[]
  $ref?: string
  $defs?: Record<string, JsonSchemaNode>
}

/**
 * The JSON Schema of `plugin.yaml` as an author writes it (durations as text, defaults left out),
 * made from the zod schema the parser uses, descriptions included. Editors use it to complete and
 * check a manifest; rules that span fields (exactly one entry kind) are the parser's alone.
 */
export function manifestJsonSchema(): JsonSchemaNode & Record<string, unknown> {
  const { $schema, ...schema } = z.toJSONSchema(manifestSchema, { io: 'input', target: 'draft-2020-12' })
  return {
    $schema,
    title: 'Corral plugin.yaml',
    description: 'A Corral plugin: what it is, how it runs, and what it asks of the host.',
    ...schema,
  } as JsonSchemaNode & Record<string, unknown>
}
