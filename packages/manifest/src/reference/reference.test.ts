import { describe, expect, it } from 'vitest'
import { manifestJsonSchema } from './manifest-json-schema.js'
import { renderManifestReference } from './manifest-reference.js'

// The committed reference files must be what the schema makes today. After changing the schema,
// `pnpm --filter @corral/manifest gen:docs` writes them again (vitest -u).

describe('the plugin.yaml reference', () => {
  it('plugin.schema.json is made from the zod schema', async () => {
    await expect(`${JSON.stringify(manifestJsonSchema(), null, 2)}\n`).toMatchFileSnapshot(
      '../../plugin.schema.json',
    )
  })

  it('docs/reference/plugin-yaml.md is made from the JSON Schema', async () => {
    await expect(renderManifestReference(manifestJsonSchema())).toMatchFileSnapshot(
      '../../../../docs/reference/plugin-yaml.md',
    )
  })

  it('documents every top-level field and every permission type', () => {
    const page = renderManifestReference(manifestJsonSchema())
    for (const field of [
      'name',
      'runtime',
      'entry.wasm',
      'resources.permissions[].scope',
      'provides.jobs[].cron',
    ]) {
      expect(page).toContain(`| \`${field}\` |`)
    }
    expect(page).toContain('| `plugin_call` |')
    expect(page).toContain('`host:*` any port')
  })
})
