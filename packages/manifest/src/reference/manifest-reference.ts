import { type PermissionType, permissionTypes } from '@corral/types'
import { scopePatterns } from '../schema.js'
import type { JsonSchemaNode } from './manifest-json-schema.js'

/** The host API methods each permission type opens (the host API reference has the details). */
const methodsByType: Record<PermissionType, string> = {
  db: '`db.query` (read), `db.exec` (write)',
  cache: '`cache.get` (read), `cache.set`, `cache.delete` (write)',
  http: '`http.request`',
  email: '`email.send`',
  config: '`config.get`',
  plugin_call: '`plugin.call`',
  events: '`events.publish`, and `provides.events` subscriptions',
  fs: 'WASI files of a wasm plugin, inside its folder',
}

/** How `access` applies per type, as the parser checks it. */
const accessByType: Record<PermissionType, string> = {
  db: 'required',
  cache: 'optional; both when left out',
  http: 'none',
  email: 'none',
  config: 'none',
  plugin_call: 'none',
  events: 'none',
  fs: 'required',
}

const example = `# yaml-language-server: $schema=/home/me/corral/packages/manifest/plugin.schema.json
name: stats
version: 1.2.0
description: Daily statistics, rolled up every five minutes.
license: MIT
min_host_version: ">=0.1.0"
runtime: grpc
entry:
  node: dist/main.js
resources:
  memory_mb: 128
  call_timeout: 2s
  permissions:
    - { type: db, access: [read, write], scope: ["stats_*"] }
    - { type: http, scope: ["api.example.com", "*.example.org:*"] }
    - { type: events, scope: ["stats.*"] }
config_schema:
  type: object
  properties: { days: { type: integer, minimum: 1 } }
config:
  days: 30
provides:
  routes:
    - { method: GET, path: /report/:day, handler: report, middleware: [auth] }
  jobs:
    - { id: rollup, cron: "*/5 * * * *", handler: rollup, timeout: 30s }`

const code = (value: unknown) => `\`${typeof value === 'string' ? value : JSON.stringify(value)}\``
const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ')

function resolve(node: JsonSchemaNode, root: JsonSchemaNode): JsonSchemaNode {
  const name = node.$ref?.replace('#/$defs/', '')
  return name === undefined ? node : { ...root.$defs?.[name], ...node, $ref: undefined }
}

/** `integer, 1–64`, `string`, `array of object`, `integer or string`. */
function typeOf(node: JsonSchemaNode, root: JsonSchemaNode): string {
  const n = resolve(node, root)
  if (n.anyOf !== undefined) return n.anyOf.map((alt) => typeOf(alt, root)).join(' or ')
  if (n.type === 'array' && n.items !== undefined) return `array of ${typeOf(n.items, root)}`
  const safe = Number.MAX_SAFE_INTEGER
  if (n.minimum !== undefined && n.maximum !== undefined && n.maximum < safe) {
    return `${n.type} ${n.minimum}–${n.maximum}`
  }
  return n.type ?? 'any'
}

/** Allowed values, patterns and an example, after the description. */
function details(node: JsonSchemaNode, root: JsonSchemaNode): string {
  const n = resolve(node, root)
  const items = n.items === undefined ? undefined : resolve(n.items, root)
  const parts = [n.description ?? '']
  const values = n.enum ?? items?.enum
  if (values !== undefined) parts.push(`One of ${values.map(code).join(', ')}.`)
  const pattern = n.pattern ?? items?.pattern
  if (pattern !== undefined) parts.push(`Pattern ${code(pattern)}.`)
  if (n.examples?.[0] !== undefined) parts.push(`Example: ${code(n.examples[0])}.`)
  return parts.filter(Boolean).join(' ')
}

interface Row {
  field: string
  node: JsonSchemaNode
  required: boolean
}

/** Every field below `node`, depth first, `[]` marking the items of a list. */
function rows(node: JsonSchemaNode, root: JsonSchemaNode, prefix: string, seen: Set<string>): Row[] {
  const n = resolve(node, root)
  if (node.$ref !== undefined) {
    if (seen.has(node.$ref)) return []
    seen = new Set([...seen, node.$ref])
  }
  if (n.type === 'array' && n.items !== undefined) return rows(n.items, root, `${prefix}[]`, seen)
  const result: Row[] = []
  for (const [name, child] of Object.entries(n.properties ?? {})) {
    const field = prefix === '' ? name : `${prefix}.${name}`
    result.push({ field, node: child, required: n.required?.includes(name) ?? false })
    result.push(...rows(child, root, field, seen))
  }
  return result
}

/** The Markdown reference of `plugin.yaml`, from its JSON Schema (itself made from the zod schema). */
export function renderManifestReference(schema: JsonSchemaNode): string {
  const table = rows(schema, schema, '', new Set()).map(({ field, node, required }) => {
    const n = resolve(node, schema)
    const presence = required ? 'required' : n.default === undefined ? '' : `default ${code(n.default)}`
    return `| ${cell(`\`${field}\``)} | ${cell(typeOf(node, schema))} | ${cell(presence)} | ${cell(details(node, schema))} |`
  })
  const scopes = permissionTypes.map((type) => {
    const { hint, pattern } = scopePatterns[type]
    return `| \`${type}\` | ${methodsByType[type]} | ${accessByType[type]} | ${cell(hint)} | ${cell(code(pattern.source))} |`
  })
  return `<!-- Generated from the zod schema in packages/manifest/src/schema.ts by \`pnpm --filter @corral/manifest gen:docs\`; do not edit. -->
# \`plugin.yaml\` reference

Every plugin has a \`plugin.yaml\` in its folder: what it is, how it runs, and what it asks of the
host. The host parses it with \`@corral/manifest\` (\`parseManifest\`, \`loadManifest\`), which reports
every problem at once with its field path and line. Editors check it as you type with the JSON
Schema [packages/manifest/plugin.schema.json](../../packages/manifest/plugin.schema.json), made from
the same source as this page: put this line at the top of the file, with the path of that file in
your Corral clone (absolute, or relative to the \`plugin.yaml\`); \`corral new\` writes it.

\`\`\`text
# yaml-language-server: $schema=/home/me/corral/packages/manifest/plugin.schema.json
\`\`\`

Durations are written with a unit (\`250ms\`, \`30s\`, \`5m\`, \`1h\`); sizes are bytes unless the name
says otherwise. Unknown fields are errors. A plugin's paths stay inside its folder (no \`..\`, not
absolute, no symbolic link out).

## An example

\`\`\`yaml
${example}
\`\`\`

## Fields

\`[]\` marks the items of a list: \`resources.permissions[].type\` is the \`type\` of each permission.

| field | type | | description |
|---|---|---|---|
${table.join('\n')}

## Permission scopes

A permission's \`scope\` is a list of globs: \`*\` matches any run of characters (dots too), every
other character itself. The grant a plugin gets is the intersection of its request and its policy,
so a policy can narrow a scope (\`stats_*\` → \`stats_daily\`) but never widen it. What a scope may
look like depends on the type:

| type | opens | access | scope | pattern |
|---|---|---|---|---|
${scopes.join('\n')}

An \`http\` scope without a port allows the scheme's default port only (80, 443); \`host:8443\` that
port; \`host:*\` any port. Private and loopback addresses are refused unless a scope names the host
exactly, without \`*\`. A \`cache\` key lives in the plugin's own namespace; a \`db\` table glob may
name a schema (\`reports.daily_*\`).
`
}
