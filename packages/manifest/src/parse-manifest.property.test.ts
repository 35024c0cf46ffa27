import { isPluginError } from '@corral/types'
import fc from 'fast-check'
import { describe, it } from 'vitest'
import { stringify } from 'yaml'
import { parseManifest } from './parse-manifest.js'

/** parseManifest either returns a manifest or throws a PluginError; nothing else escapes. */
function onlyPluginErrors(text: string): void {
  try {
    parseManifest(text)
  } catch (error) {
    if (!isPluginError(error)) throw error
  }
}

const fieldNames = [
  'name',
  'version',
  'runtime',
  'entry',
  'wasm',
  'binary',
  'resources',
  'permissions',
  'type',
  'scope',
  'access',
  'config',
  '__proto__',
  'constructor',
]

// Each property runs hundreds of parses: seconds of CPU on a busy 2-core machine, so the default
// 5 s per test is too tight for a count of runs (nothing here measures time).
describe('parseManifest (property)', { timeout: 60_000 }, () => {
  it('throws only PluginError for arbitrary text', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 400 }), onlyPluginErrors), { numRuns: 500 })
  })

  it('throws only PluginError for arbitrary JSON values', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => onlyPluginErrors(JSON.stringify(value) ?? 'null')),
      { numRuns: 500 },
    )
  })

  it('throws only PluginError for arbitrary YAML documents shaped like manifests', () => {
    const tree = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small' },
        fc.string(),
        fc.integer(),
        fc.double(),
        fc.boolean(),
        fc.constant(null),
        fc.array(tie('value'), { maxLength: 4 }),
        fc.dictionary(fc.constantFrom(...fieldNames), tie('value'), { maxKeys: 5 }),
      ),
    }))
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom(...fieldNames), tree.value, { maxKeys: 8 }), (doc) =>
        onlyPluginErrors(stringify(doc)),
      ),
      { numRuns: 500 },
    )
  })

  it('throws only PluginError for YAML with anchors, tags and odd syntax', () => {
    const fragments = [
      '&a ',
      '*a',
      '!!binary ',
      '!!js/function ',
      '? ',
      '- ',
      '{',
      '}',
      '[',
      ']',
      ': ',
      '\n',
      '  ',
      '"',
      "'",
      '|',
      '>',
      '#',
      '%YAML 1.2\n---\n',
      '<<: *a\n',
      'name: x\n',
    ]
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...fragments), { maxLength: 30 }), (parts) =>
        onlyPluginErrors(parts.join('')),
      ),
      { numRuns: 500 },
    )
  })
})
