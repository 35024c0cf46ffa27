import type { FieldError, JsonSchema, Manifest } from '@corral/types'
import { PluginError } from '@corral/types'
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import { formatFieldErrors } from './field-errors.js'

const draft2020 = 'https://json-schema.org/draft/2020-12/schema'

function newAjv(draft: '2020' | '07'): Ajv {
  const options = { allErrors: true, useDefaults: true, strict: false } as const
  const ajv = draft === '2020' ? new Ajv2020(options) : new Ajv(options)
  addFormats.default(ajv)
  return ajv
}

const validators = new WeakMap<JsonSchema, ValidateFunction>()

/** Compiles (once per schema object) a validator, choosing the draft from `$schema` (default 2020-12). */
function compile(schema: JsonSchema, plugin: string): ValidateFunction {
  let validate = validators.get(schema)
  if (validate === undefined) {
    const declared = typeof schema.$schema === 'string' ? schema.$schema : draft2020
    try {
      validate = newAjv(declared.includes('2020-12') ? '2020' : '07').compile(schema)
    } catch (cause) {
      throw new PluginError(
        'manifest_invalid',
        `config_schema is not a valid JSON Schema: ${(cause as Error).message}`,
        {
          plugin,
          fields: [{ field: 'config_schema', message: (cause as Error).message }],
          cause,
        },
      )
    }
    validators.set(schema, validate)
  }
  return validate
}

function toFieldError(error: ErrorObject): FieldError {
  const missing = error.keyword === 'required' ? `/${String(error.params.missingProperty)}` : ''
  const extra = error.keyword === 'additionalProperties' ? `/${String(error.params.additionalProperty)}` : ''
  const field = `${error.instancePath}${missing}${extra}` || '/'
  return { field, message: error.message ?? 'is invalid' }
}

/**
 * The plugin's effective config: the manifest's `config` defaults, overlaid by `config`, with the
 * schema's own defaults filled in, checked against `config_schema`. Fails with `config_invalid`
 * listing every problem by JSON pointer (`/smtp/port`).
 *
 * @example
 * const config = validateConfig(manifest, { greeting: 'hi' })
 */
export function validateConfig(
  manifest: Manifest,
  config: Record<string, unknown> = {},
): Record<string, unknown> {
  const merged: Record<string, unknown> = structuredClone({ ...manifest.config, ...config })
  if (manifest.config_schema === undefined) return merged
  const validate = compile(manifest.config_schema, manifest.name)
  if (!validate(merged)) {
    const fields = (validate.errors ?? []).map(toFieldError)
    const list = formatFieldErrors(fields)
    throw new PluginError('config_invalid', `config does not match config_schema:\n${list}`, {
      plugin: manifest.name,
      fields,
    })
  }
  return merged
}
