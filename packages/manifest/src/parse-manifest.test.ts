import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { isPluginError, type PluginError } from '@corral/types'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { loadManifest, parseManifest } from './parse-manifest.js'

const examplesDir = path.resolve(fileURLToPath(import.meta.url), '../../../../examples/plugins')

const base = {
  name: 'stats',
  version: '1.2.3',
  runtime: 'wasm',
  entry: { wasm: 'build/plugin.wasm' },
}

/** Sets `value` at a dotted path of a copy of `base` (undefined deletes). */
function withField(field: string, value: unknown): Record<string, unknown> {
  const copy = structuredClone(base) as Record<string, unknown>
  const keys = field.split('.')
  let target = copy
  for (const key of keys.slice(0, -1)) {
    target[key] ??= {}
    target = target[key] as Record<string, unknown>
  }
  const last = keys[keys.length - 1] as string
  if (value === undefined) delete target[last]
  else target[last] = value
  return copy
}

function parseError(text: string): PluginError {
  try {
    parseManifest(text)
  } catch (error) {
    if (isPluginError(error)) return error
    throw error
  }
  throw new Error('expected parseManifest to fail')
}

describe('parseManifest', () => {
  it('parses a minimal wasm manifest and fills the defaults', () => {
    const manifest = parseManifest(stringify(base))
    expect(manifest).toEqual({
      ...base,
      wasm: { pool: { max_instances: 4, wait_timeout: 5000 } },
      resources: { permissions: [] },
      config: {},
    })
  })

  it('parses every field of a full manifest', () => {
    const manifest = parseManifest(
      stringify({
        ...base,
        description: 'Daily statistics',
        author: 'Ada',
        license: 'Apache-2.0 OR MIT',
        homepage: 'https://example.com/stats',
        min_host_version: '>=0.1.0 <2',
        wasm: { pool: { max_instances: 8, wait_timeout: '250ms' } },
        resources: {
          memory_mb: 32,
          call_timeout: '1.5s',
          init_timeout: '1m',
          shutdown_timeout: '2s',
          max_output_bytes: 65536,
          permissions: [
            { type: 'db', access: ['read', 'write'], scope: ['stats_*'] },
            { type: 'cache', scope: ['*'] },
            { type: 'http', scope: ['api.example.com', '*.example.org:8443'] },
          ],
        },
        config_schema: { type: 'object' },
        config: { a: 1 },
        provides: { routes: [{ method: 'GET', path: '/report/:day', handler: 'report' }] },
      }),
    )
    expect(manifest.resources).toEqual({
      memory_mb: 32,
      call_timeout: 1500,
      init_timeout: 60_000,
      shutdown_timeout: 2000,
      max_output_bytes: 65536,
      permissions: [
        { type: 'db', access: ['read', 'write'], scope: ['stats_*'] },
        { type: 'cache', access: ['read', 'write'], scope: ['*'] },
        { type: 'http', access: [], scope: ['api.example.com', '*.example.org:8443'] },
      ],
    })
    expect(manifest.wasm?.pool).toEqual({ max_instances: 8, wait_timeout: 250 })
    expect(manifest.provides?.routes?.[0]).toEqual({
      method: 'GET',
      path: '/report/:day',
      handler: 'report',
      middleware: [],
    })
  })

  it('parses grpc entries with args and pass-through environment', () => {
    const manifest = parseManifest(
      stringify({ ...base, runtime: 'grpc', entry: { binary: 'bin/stats', args: ['--serve'], env: ['TZ'] } }),
    )
    expect(manifest.entry).toEqual({ binary: 'bin/stats', args: ['--serve'], env: ['TZ'] })
    expect(manifest.wasm).toBeUndefined()
    const node = parseManifest(stringify({ ...base, runtime: 'grpc', entry: { node: 'dist/main.js' } }))
    expect(node.entry).toEqual({ node: 'dist/main.js', args: [], env: [] })
  })

  it.each([
    ['src/main.ts', 'dist/main.js'],
    ['src/main.mts', 'dist/main.mjs'],
    ['main.cts', 'dist/main.cjs'],
  ])('refuses TypeScript source %s as entry.node, on its line, naming the built file', (source, built) => {
    const error = parseError(
      ['name: stats', 'version: 1.0.0', 'runtime: grpc', 'entry:', `  node: ${source}`].join('\n'),
    )
    expect(error.code).toBe('manifest_invalid')
    expect(error.fields).toEqual([
      {
        field: 'entry.node',
        message: `must be built JavaScript, not TypeScript source: run corral build and name its output, like entry: { node: ${built} }`,
        line: 5,
        column: 9,
      },
    ])
    expect(
      parseManifest(stringify({ ...base, runtime: 'grpc', entry: { node: built } })).entry,
    ).toMatchObject({
      node: built,
    })
  })

  // Every field, accept and reject: [field, value, accepted, the field path of the error].
  const cases: Array<[string, unknown, boolean, string?]> = [
    ['name', 'ab', true],
    ['name', 'a-very-long-but-valid-name-0123456789', true],
    ['name', undefined, false, 'name'],
    ['name', 'A', false, 'name'],
    ['name', 'Stats', false, 'name'],
    ['name', '1stats', false, 'name'],
    ['name', 'stats_db', false, 'name'],
    ['name', `a${'b'.repeat(63)}`, false, 'name'],
    ['name', 42, false, 'name'],
    ['version', '0.0.1-beta.1+build.5', true],
    ['version', undefined, false, 'version'],
    ['version', '1.2', false, 'version'],
    ['version', 'v1.2.3x', false, 'version'],
    ['runtime', 'grpc', false, 'entry.wasm'],
    ['runtime', 'docker', false, 'runtime'],
    ['runtime', undefined, false, 'runtime'],
    ['entry', undefined, false, 'entry'],
    ['entry', {}, false, 'entry'],
    ['entry', { wasm: 'a.wasm', node: 'b.js' }, false, 'entry'],
    ['entry.wasm', '../other/plugin.wasm', false, 'entry.wasm'],
    ['entry.wasm', '/etc/passwd', false, 'entry.wasm'],
    ['entry.wasm', 'C:\\plugin.wasm', false, 'entry.wasm'],
    ['entry.wasm', 'build/../../x.wasm', false, 'entry.wasm'],
    ['entry.wasm', '', false, 'entry.wasm'],
    ['entry.args', ['x'], false, 'entry'],
    ['entry.main', 'x', false, 'entry.main'],
    ['description', 'x'.repeat(2000), true],
    ['description', 'x'.repeat(2001), false, 'description'],
    ['author', 'Ada Lovelace <ada@example.com>', true],
    ['license', 'MIT', true],
    ['license', 'GPL-3.0-or-later WITH Classpath-exception-2.0', true],
    ['license', 'MIT-ish', false, 'license'],
    ['homepage', 'https://example.com', true],
    ['homepage', 'ftp://example.com', false, 'homepage'],
    ['homepage', 'not a url', false, 'homepage'],
    ['min_host_version', '^1.0.0 || >=2.1', true],
    ['min_host_version', 'newest', false, 'min_host_version'],
    ['wasm.pool.max_instances', 64, true],
    ['wasm.pool.max_instances', 0, false, 'wasm.pool.max_instances'],
    ['wasm.pool.max_instances', 65, false, 'wasm.pool.max_instances'],
    ['wasm.pool.max_instances', 1.5, false, 'wasm.pool.max_instances'],
    ['wasm.pool.wait_timeout', '100ms', true],
    ['wasm.pool.wait_timeout', 100, false, 'wasm.pool.wait_timeout'],
    ['wasm.pool.wait_timeout', '5 seconds', false, 'wasm.pool.wait_timeout'],
    ['wasm.pool.idle_timeout', '2m', true],
    ['wasm.pool.idle_timeout', '0ms', false, 'wasm.pool.idle_timeout'],
    ['wasm.pool.idle_timeout', 30_000, false, 'wasm.pool.idle_timeout'],
    ['wasm.pool.size', 2, false, 'wasm.pool.size'],
    ['resources.memory_mb', 65536, true],
    ['resources.memory_mb', 0, false, 'resources.memory_mb'],
    ['resources.memory_mb', '64MB', false, 'resources.memory_mb'],
    ['resources.call_timeout', '250ms', true],
    ['resources.call_timeout', '1h', true],
    ['resources.call_timeout', '2h', false, 'resources.call_timeout'],
    ['resources.call_timeout', '0ms', false, 'resources.call_timeout'],
    ['resources.call_timeout', '-5s', false, 'resources.call_timeout'],
    ['resources.init_timeout', '30s', true],
    ['resources.init_timeout', 'soon', false, 'resources.init_timeout'],
    ['resources.shutdown_timeout', '5m', true],
    ['resources.shutdown_timeout', '5d', false, 'resources.shutdown_timeout'],
    ['resources.max_output_bytes', 1024, true],
    ['resources.max_output_bytes', -1, false, 'resources.max_output_bytes'],
    ['resources.cpu', 2, false, 'resources.cpu'],
    ['config_schema', { type: 'object', properties: {} }, true],
    ['config_schema', 'object', false, 'config_schema'],
    ['config', { nested: { ok: true } }, true],
    ['config', ['a'], false, 'config'],
    [
      'provides.menu_items',
      [
        {
          id: 'stats',
          label: 'Stats',
          location: 'admin',
          children: [{ id: 'd', label: 'Daily', location: 'admin', path: '/d' }],
        },
      ],
      true,
    ],
    [
      'provides.menu_items',
      [{ id: 'stats', label: 'Stats', location: 'sidebar' }],
      false,
      'provides.menu_items[0].location',
    ],
    ['provides.widgets', [{ id: 'w', title: 'W', handler: 'widget', refresh_seconds: 30 }], true],
    [
      'provides.widgets',
      [{ id: 'w', title: 'W', handler: 'bad name' }],
      false,
      'provides.widgets[0].handler',
    ],
    ['provides.jobs', [{ id: 'nightly', cron: '0 3 * * *', handler: 'nightly', timeout: '5m' }], true],
    [
      'provides.jobs',
      [{ id: 'nightly', cron: 'at three', handler: 'nightly' }],
      false,
      'provides.jobs[0].cron',
    ],
    [
      'provides.routes',
      [{ method: 'GET', path: '/x', handler: 'x', middleware: ['auth', 'group:ops'] }],
      true,
    ],
    ['provides.routes', [{ method: 'GET', path: 'x', handler: 'x' }], false, 'provides.routes[0].path'],
    [
      'provides.routes',
      [{ method: 'GET', path: '/x', handler: 'x', middleware: ['root'] }],
      false,
      'provides.routes[0].middleware[0]',
    ],
    ['provides.error_codes', [{ code: 'quota', message: 'Quota exceeded', http_status: 429 }], true],
    [
      'provides.error_codes',
      [{ code: 'quota', message: 'x', http_status: 200 }],
      false,
      'provides.error_codes[0].http_status',
    ],
    [
      'provides.i18n',
      { namespace: 'stats', languages: ['en', 'pt-BR'], translations: { en: { hi: 'Hi' } } },
      true,
    ],
    ['provides.i18n', { namespace: 'stats', languages: ['English'] }, false, 'provides.i18n.languages[0]'],
    ['provides.groups', [{ name: 'stats-admins' }], true],
    ['provides.templates', [{ name: 'ticket/footer', content: '<p>hi</p>', override: true }], true],
    ['provides.hidden_menu_items', ['reports'], true],
    ['provides.landing_page', 'dashboard', false, 'provides.landing_page'],
    ['provides.widget', [], false, 'provides.widget'],
  ]

  it.each(
    cases.map(
      ([field, value, accepted, errorField]) =>
        [field, JSON.stringify(value)?.slice(0, 60), accepted, value, errorField] as const,
    ),
  )('%s = %s → accepted: %s', (field, _label, accepted, value, errorField) => {
    const text = stringify(withField(field, value))
    if (accepted) {
      expect(() => parseManifest(text)).not.toThrow()
    } else {
      const error = parseError(text)
      expect(error.code).toBe('manifest_invalid')
      expect(error.fields.map((f) => f.field)).toContain(errorField)
    }
  })

  const permissionCases: Array<[unknown, boolean, string?]> = [
    [{ type: 'db', access: ['read'], scope: ['stats_*', 'public.stats_daily'] }, true],
    [{ type: 'db', scope: ['stats_*'] }, false, 'resources.permissions[0].access'],
    [{ type: 'db', access: ['delete'], scope: ['x'] }, false, 'resources.permissions[0].access[0]'],
    [{ type: 'db', access: ['read'], scope: ['stats; drop'] }, false, 'resources.permissions[0].scope[0]'],
    [{ type: 'db', access: ['read'], scope: [] }, false, 'resources.permissions[0].scope'],
    [{ type: 'http', scope: ['api.example.com', 'localhost:8080', '*.example.com'] }, true],
    [{ type: 'http', scope: ['api.example.com:*', '*:8443', '*:*'] }, true],
    [{ type: 'http', scope: ['http://api.example.com/'] }, false, 'resources.permissions[0].scope[0]'],
    [{ type: 'http', scope: ['api.example.com:8*'] }, false, 'resources.permissions[0].scope[0]'],
    [{ type: 'http', access: ['read'], scope: ['example.com'] }, false, 'resources.permissions[0].access'],
    [{ type: 'email', scope: ['example.com'] }, true],
    [{ type: 'email', scope: ['someone@example.com'] }, false, 'resources.permissions[0].scope[0]'],
    [{ type: 'config', scope: ['smtp.*'] }, true],
    [{ type: 'plugin_call', scope: ['billing'] }, true],
    [{ type: 'events', scope: ['ticket.*'] }, true],
    [{ type: 'fs', access: ['read'], scope: ['data'] }, true],
    [{ type: 'fs', access: ['read'], scope: ['../shared'] }, false, 'resources.permissions[0].scope[0]'],
    [{ type: 'fs', access: ['write'], scope: ['/var/data'] }, false, 'resources.permissions[0].scope[0]'],
    [{ type: 'network', scope: ['x'] }, false, 'resources.permissions[0].type'],
    [{ type: 'cache', scope: ['*'], scopes: ['x'] }, false, 'resources.permissions[0].scopes'],
  ]

  it.each(permissionCases)('permission %j → accepted: %s', (permission, accepted, errorField) => {
    const text = stringify(withField('resources.permissions', [permission]))
    if (accepted) {
      expect(() => parseManifest(text)).not.toThrow()
    } else {
      expect(parseError(text).fields.map((f) => f.field)).toContain(errorField)
    }
  })

  it('names every form an http scope may take when one is wrong', () => {
    const text = stringify(withField('resources.permissions', [{ type: 'http', scope: ['https://x.test'] }]))
    expect(parseError(text).fields[0]?.message).toBe(
      'must be a host glob like api.example.com, *.example.com, api.example.com:8443 or api.example.com:* (any port)',
    )
  })

  it('reports every problem at once, each with its line and column', () => {
    const error = parseError(
      [
        'name: Bad_Name', // 1
        'version: one', // 2
        'runtime: wasm', // 3
        'entry:', // 4
        '  wasm: ../escape.wasm', // 5
        'resources:', // 6
        '  call_timeout: 10', // 7
        '  permissions:', // 8
        '    - type: db', // 9
        '      scope: [x]', // 10
      ].join('\n'),
    )
    expect(error.fields).toEqual([
      { field: 'name', message: expect.stringMatching(/a-z/), line: 1, column: 7 },
      { field: 'version', message: expect.stringMatching(/semver/), line: 2, column: 10 },
      {
        field: 'entry.wasm',
        message: expect.stringMatching(/inside the plugin's folder/),
        line: 5,
        column: 9,
      },
      { field: 'resources.call_timeout', message: expect.stringMatching(/unit/), line: 7, column: 17 },
      {
        field: 'resources.permissions[0].access',
        message: expect.stringMatching(/required/),
        line: 9,
        column: 7,
      },
    ])
    expect(error.message).toContain('5 problems')
    expect(error.message).toContain('7:17 resources.call_timeout')
  })

  it('names an unknown field at its key, with a suggestion when it looks like a typo', () => {
    const error = parseError(
      'name: stats\nversion: 1.0.0\nruntime: wasm\nentry: { wasm: a.wasm }\nresouces: {}\nflavour: 2\n',
    )
    expect(error.fields).toEqual([
      { field: 'resouces', message: 'is not a known field (did you mean "resources"?)', line: 5, column: 1 },
      { field: 'flavour', message: 'is not a known field', line: 6, column: 1 },
    ])
  })

  it('suggests within nested objects too', () => {
    const error = parseError(stringify(withField('resources.memory_md', 4)))
    expect(error.fields[0]?.message).toBe('is not a known field (did you mean "memory_mb"?)')
  })

  it('refuses provides.permissions, which would grant nothing, pointing to resources.permissions', () => {
    const error = parseError(
      'name: stats\nversion: 1.0.0\nruntime: wasm\nentry: { wasm: a.wasm }\nprovides:\n  permissions:\n    - { type: cache, scope: ["*"] }\n',
    )
    expect(error.fields).toEqual([
      {
        field: 'provides.permissions',
        message:
          'is not a known field (did you mean "resources.permissions"?): permissions listed here grant nothing',
        line: 6,
        column: 3,
      },
    ])
  })

  it('reports YAML syntax errors with their position', () => {
    const error = parseError('name: stats\nversion: [1.0.0\nruntime: wasm\n')
    expect(error.code).toBe('manifest_invalid')
    expect(error.fields[0]?.field).toBe('(yaml)')
    expect(error.fields[0]?.line).toBeGreaterThanOrEqual(2)
  })

  it('refuses duplicate keys', () => {
    const error = parseError('name: a1\nname: b1\nversion: 1.0.0\nruntime: wasm\nentry: {wasm: a.wasm}\n')
    expect(error.fields[0]?.line).toBe(2)
  })

  it('refuses a document that is not a mapping', () => {
    expect(parseError('- a\n- b\n').fields[0]?.field).toBe('(root)')
    expect(parseError('').fields[0]?.field).toBe('(root)')
  })

  it('refuses an alias bomb without expanding it', () => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]']
    for (let i = 0; i < 8; i++)
      bomb.push(`${'bcdefghi'[i]}: &${'bcdefghi'[i]} [${Array(10).fill(`*${'abcdefgh'[i]}`).join(', ')}]`)
    expect(parseError(bomb.join('\n')).code).toBe('manifest_invalid')
  })

  it('refuses a manifest over 1 MiB', () => {
    expect(parseError(`description: "${'x'.repeat(1 << 20)}"`).fields[0]?.message).toMatch(/larger than/)
  })

  it('parses JSON too', () => {
    expect(parseManifest(JSON.stringify(base)).name).toBe('stats')
  })
})

describe('loadManifest', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'corral-manifest-'))
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('loads plugin.yaml from a folder and returns the folder', async () => {
    await writeFile(path.join(dir, 'plugin.yaml'), stringify(base))
    const loaded = await loadManifest(dir)
    expect(loaded.manifest.name).toBe('stats')
    expect(loaded.dir).toBe(dir)
  })

  it('fails with not_found for a folder without plugin.yaml, asking about a plugin.yml beside it', async () => {
    await expect(loadManifest(dir)).rejects.toMatchObject({
      code: 'not_found',
      message: expect.not.stringContaining('did you mean'),
    })
    await writeFile(path.join(dir, 'plugin.yml'), stringify(base))
    await expect(loadManifest(dir)).rejects.toMatchObject({
      code: 'not_found',
      message: expect.stringMatching(
        /cannot read manifest .*plugin\.yaml: .*\(there is a plugin\.yml: did you mean plugin\.yaml\?\)$/,
      ),
    })
  })

  it('refuses an entry that leaves the folder through a symlink', async () => {
    const outside = await mkdtemp(path.join(tmpdir(), 'corral-outside-'))
    try {
      await symlink(outside, path.join(dir, 'build'))
      await writeFile(path.join(dir, 'plugin.yaml'), stringify(base))
      const error = await loadManifest(dir).catch((e: PluginError) => e)
      expect(isPluginError(error) && error.code).toBe('manifest_invalid')
      expect((error as PluginError).fields[0]?.field).toBe('entry.wasm')
      expect((error as PluginError).fields[0]?.message).toMatch(/outside the plugin's folder/)
    } finally {
      await rm(outside, { recursive: true, force: true })
    }
  })

  it('refuses an fs scope that is a symlink out of the folder', async () => {
    await symlink('/etc', path.join(dir, 'data'))
    await writeFile(
      path.join(dir, 'plugin.yaml'),
      stringify(withField('resources.permissions', [{ type: 'fs', access: ['read'], scope: ['data'] }])),
    )
    const error = (await loadManifest(dir).catch((e) => e)) as PluginError
    expect(error.fields[0]?.field).toBe('resources.permissions[0].scope[0]')
  })

  it('accepts a symlink that stays inside the folder, and entries not built yet', async () => {
    await mkdir(path.join(dir, 'out'))
    await symlink(path.join(dir, 'out'), path.join(dir, 'build'))
    await writeFile(path.join(dir, 'plugin.yaml'), stringify(base))
    await expect(loadManifest(dir)).resolves.toMatchObject({ manifest: { name: 'stats' } })
  })

  it('fails with not_found for a missing file', async () => {
    await expect(loadManifest(path.join(dir, 'nope'))).rejects.toMatchObject({ code: 'not_found' })
  })

  it('loads every example plugin manifest', async () => {
    const names = await readdir(examplesDir)
    expect(names.length).toBeGreaterThanOrEqual(4)
    const runtimes = new Set<string>()
    for (const name of names) {
      const { manifest } = await loadManifest(path.join(examplesDir, name))
      expect(manifest.name).toBe(name)
      runtimes.add(manifest.runtime)
    }
    expect(runtimes).toEqual(new Set(['wasm', 'grpc']))
  })
})
