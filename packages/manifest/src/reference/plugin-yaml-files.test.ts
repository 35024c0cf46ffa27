import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Ajv2020 } from 'ajv/dist/2020.js'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { parseManifest } from '../parse-manifest.js'

const repo = fileURLToPath(new URL('../../../../', import.meta.url))
const schemaFile = path.join(repo, 'packages/manifest/plugin.schema.json')
const validate = new Ajv2020({ allErrors: true }).compile(JSON.parse(readFileSync(schemaFile, 'utf8')))

/** Every plugin.yaml the repository ships: the examples, and the templates of `corral new`. */
const manifests = ['examples/plugins', 'packages/cli/templates'].flatMap((parent) =>
  readdirSync(path.join(repo, parent)).map((dir) => path.join(parent, dir, 'plugin.yaml')),
)

describe('every plugin.yaml of the repository', () => {
  it.each(manifests)('%s names the JSON Schema, satisfies it, and parses', (file) => {
    // A template's name and the folder of the Corral packages are placeholders until `corral new`
    // fills them in: in a clone, its packages/ folder, so that the schema's path is the clone's file.
    const text = readFileSync(path.join(repo, file), 'utf8')
      .replaceAll('__NAME__', 'my-plugin')
      .replaceAll('__CORRAL_PACKAGES__', path.join(repo, 'packages'))
    const schemaLine = /^# yaml-language-server: \$schema=(\S+)$/m.exec(text)?.[1]
    const expected = file.startsWith('packages/cli/templates')
      ? schemaFile
      : path.relative(path.dirname(path.join(repo, file)), schemaFile)
    expect(schemaLine).toBe(expected)
    expect(validate(parse(text)), JSON.stringify(validate.errors)).toBe(true)
    expect(() => parseManifest(text, { source: file })).not.toThrow()
  })

  it('the JSON Schema refuses what the parser refuses: an http scope with a URL, an unknown field', () => {
    const base = { name: 'x-plugin', version: '1.0.0', runtime: 'wasm', entry: { wasm: 'a.wasm' } }
    expect(validate(base)).toBe(true)
    const badScope = { ...base, resources: { permissions: [{ type: 'http', scope: ['https://x.test/'] }] } }
    expect(validate(badScope)).toBe(false)
    expect(validate({ ...base, resouces: {} })).toBe(false)
  })
})
