import type {
  Access,
  Manifest,
  MenuItem,
  Permission,
  PermissionType,
  PluginCapabilities,
  Registration,
} from '@corral/types'
import { permissionTypes } from '@corral/types'
import { Cron } from 'croner'
import semver from 'semver'
import parseSpdx from 'spdx-expression-parse'
import { z } from 'zod'
import { parseDuration } from './duration.js'

export const pluginNamePattern = /^[a-z][a-z0-9-]{1,62}$/
/** {@link pluginNamePattern} in words: what a name that does not match is told. */
export const pluginNameRule = 'must be 2-63 characters of a-z, 0-9 and "-", starting with a letter'

const pluginName = z.string().regex(pluginNamePattern, pluginNameRule)

const semverVersion = z
  .string()
  .refine((v) => semver.valid(v) !== null, 'must be a semver version, like 1.2.3')

const semverRange = z
  .string()
  .refine((v) => semver.validRange(v) !== null, 'must be a semver range, like ">=1.2.0" or "^2"')

const spdxLicense = z.string().refine((v) => {
  try {
    parseSpdx(v)
    return true
  } catch {
    return false
  }
}, 'must be an SPDX license expression, like MIT or "Apache-2.0 OR MIT"')

const url = z.string().refine((v) => URL.canParse(v) && /^https?:/.test(v), 'must be an http(s) URL')

/** A path that stays inside the plugin's folder, as far as its text goes (links are checked on disk). */
export const relativePath = z
  .string()
  .min(1, 'must not be empty')
  .refine((p) => !p.includes('\0'), 'must not contain a NUL byte')
  .refine((p) => !/^([/\\]|[A-Za-z]:)/.test(p), "must be relative to the plugin's folder, not absolute")
  .refine((p) => !p.split(/[/\\]/).includes('..'), "must stay inside the plugin's folder (no '..')")

/** A duration with a unit (`250ms`, `30s`, `5m`), as milliseconds, within `1ms..maxMs`. */
function duration(maxMs: number) {
  return z.string('must be a duration with a unit, like 250ms, 30s or 5m').transform((text, ctx) => {
    const ms = parseDuration(text)
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: 'must be a duration with a unit, like 250ms, 30s or 5m' })
      return z.NEVER
    }
    if (ms < 1 || ms > maxMs) {
      ctx.addIssue({ code: 'custom', message: `must be between 1ms and ${maxMs / 60_000}m` })
      return z.NEVER
    }
    return ms
  })
}

const hour = 3_600_000

const access = z.enum(['read', 'write'] satisfies Access[])

/** Which characters each type's scope globs may use. */
export const scopePatterns: Record<PermissionType, { pattern: RegExp; hint: string }> = {
  db: {
    pattern: /^[A-Za-z_*][A-Za-z0-9_*]*(\.[A-Za-z_*][A-Za-z0-9_*]*)?$/,
    hint: 'a table glob like stats_*',
  },
  cache: { pattern: /^[^\s]+$/, hint: 'a key glob without spaces' },
  http: {
    pattern: /^(\*|(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)*)(:(\d{1,5}|\*))?$/,
    hint: 'a host glob like api.example.com, *.example.com, api.example.com:8443 or api.example.com:* (any port)',
  },
  email: { pattern: /^(\*|(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)+)$/, hint: 'a recipient domain like example.com' },
  config: { pattern: /^[A-Za-z0-9_*][A-Za-z0-9_.*-]*$/, hint: 'a config key glob like smtp.*' },
  plugin_call: { pattern: /^[a-z*][a-z0-9*-]*$/, hint: 'a plugin name glob' },
  events: { pattern: /^[A-Za-z0-9_*][A-Za-z0-9_.*:-]*$/, hint: 'an event type glob like ticket.*' },
  fs: { pattern: /^[^\0]+$/, hint: "a directory inside the plugin's folder" },
}

/** Types whose permissions carry `access`. */
const typesWithAccess: ReadonlySet<PermissionType> = new Set(['db', 'cache', 'fs'])

export const permissionSchema = z
  .strictObject({
    type: z.enum(permissionTypes as [PermissionType, ...PermissionType[]]).meta({
      description: 'The kind of resource: which host API methods the permission opens.',
    }),
    access: z.array(access).optional().meta({
      description:
        'read, write or both. Required for db and fs; for cache, left out means both; the other types take none.',
    }),
    scope: z
      .array(z.string().min(1, 'must not be empty'))
      .min(1, 'must list at least one glob')
      .meta({
        description:
          'Globs naming what the permission covers; `*` matches any run of characters. Their syntax depends on `type` (see the table).',
        examples: [['stats_*'], ['greetings:*'], ['api.example.com', '*.example.org:*']],
      }),
  })
  .superRefine((perm, ctx) => {
    const { pattern, hint } = scopePatterns[perm.type]
    perm.scope.forEach((glob, i) => {
      if (!pattern.test(glob))
        ctx.addIssue({ code: 'custom', path: ['scope', i], message: `must be ${hint}` })
      if (perm.type === 'fs') {
        const result = relativePath.safeParse(glob)
        if (!result.success) {
          ctx.addIssue({
            code: 'custom',
            path: ['scope', i],
            message: result.error.issues[0]?.message ?? 'invalid',
          })
        }
      }
    })
    // An empty list is what the parsed form holds for types without access, so it is accepted there:
    // a parsed permission must parse again to itself (registrations carry parsed permissions).
    const listed = perm.access !== undefined && perm.access.length > 0
    if (listed && !typesWithAccess.has(perm.type)) {
      ctx.addIssue({
        code: 'custom',
        path: ['access'],
        message: 'applies only to db, cache and fs permissions',
      })
    }
    if (!listed && perm.access !== undefined && typesWithAccess.has(perm.type)) {
      ctx.addIssue({ code: 'custom', path: ['access'], message: 'must list read, write or both' })
    }
    if (perm.access === undefined && (perm.type === 'db' || perm.type === 'fs')) {
      ctx.addIssue({
        code: 'custom',
        path: ['access'],
        message: `is required for ${perm.type}: read, write or both`,
      })
    }
  })
  .meta({
    description: 'One resource the plugin asks for; the administrator grants it, narrows it, or not.',
    // Editors check each scope's syntax by its type, from the same patterns as the parser.
    allOf: permissionTypes.map((type) => ({
      if: { properties: { type: { const: type } } },
      // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then, never awaited
      then: { properties: { scope: { items: { pattern: scopePatterns[type].pattern.source } } } },
    })),
  })
  .transform(
    (perm): Permission => ({
      type: perm.type,
      // A cache permission without `access` means the whole namespace, read and write.
      access: [...new Set(perm.access ?? (perm.type === 'cache' ? (['read', 'write'] as Access[]) : []))],
      scope: perm.scope,
    }),
  )

const handlerName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'must be a function name: letters, digits and _')

const itemId = z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,127}$/, 'must be an id: a-z, 0-9, _, ., -')

const routeSchema = z
  .strictObject({
    method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']),
    path: z
      .string()
      .regex(/^\/[A-Za-z0-9_\-./:]*$/, 'must start with / and use only path characters and :params')
      .meta({
        description: "Below the plugin's mount point `/plugins/<name>`; `:day` is a parameter.",
        examples: ['/report/:day'],
      }),
    handler: handlerName.meta({ description: 'The plugin function called with the request.' }),
    middleware: z
      .array(
        z.string().regex(/^(auth|admin|group:[a-z0-9][a-z0-9_-]*)$/, 'must be auth, admin or group:<name>'),
      )
      .default([])
      .meta({ description: 'Checks before the handler, in order: `auth`, `admin`, `group:<name>`.' }),
    description: z.string().optional(),
  })
  .meta({ description: 'An HTTP route the host serves by calling a plugin function.' })

const menuItemSchema: z.ZodType<MenuItem> = z
  .lazy(() =>
    z.strictObject({
      id: itemId,
      label: z.string().min(1),
      location: z.enum(['admin', 'agent', 'customer']),
      path: z.string().regex(/^\//, 'must start with /').optional(),
      icon: z.string().optional(),
      order: z.number().int().optional(),
      group: z.string().optional(),
      children: z.array(menuItemSchema).optional(),
    }),
  )
  .meta({ id: 'menu_item', description: 'A menu entry in one of the three menus, its children nested.' })

const widgetSchema = z
  .strictObject({
    id: itemId,
    title: z.string().min(1),
    handler: handlerName,
    size: z.enum(['small', 'medium', 'large', 'full']).default('medium'),
    refresh_seconds: z
      .number()
      .int()
      .min(1)
      .max(86_400)
      .optional()
      .meta({ description: 'How often the dashboard asks again; never when left out.' }),
  })
  .meta({ description: 'A dashboard widget: its handler returns HTML.' })

const cronExpression = z.string().refine((expr) => {
  try {
    new Cron(expr, { paused: true }).stop()
    return true
  } catch {
    return false
  }
}, 'must be a cron expression, like "*/5 * * * *"')

const jobSchema = z
  .strictObject({
    id: itemId,
    cron: cronExpression,
    handler: handlerName,
    // A manifest writes `30s`; a registration built in code may give the milliseconds its type says.
    timeout: z
      .union([
        z
          .number()
          .int()
          .min(1)
          .max(24 * hour),
        duration(24 * hour),
      ])
      .optional(),
    enabled: z.boolean().default(true),
  })
  .meta({
    description: 'A scheduled job: the host calls `handler` on the cron schedule, on one replica at a time.',
  })

const templateSchema = z
  .strictObject({
    name: z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_./-]*$/, 'must be a template name'),
    content: z.string(),
    override: z
      .boolean()
      .default(false)
      .meta({ description: "Replaces the host's template of that name instead of adding one." }),
  })
  .meta({ description: 'A template added to the host, or one of its own overridden.' })

const language = z
  .string()
  .regex(/^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/, 'must be a language tag like en or pt-BR')

const i18nSchema = z
  .strictObject({
    namespace: z.string().regex(/^[a-z][a-z0-9_-]*$/, 'must be a-z, 0-9, _ and -'),
    languages: z.array(language).min(1),
    translations: z
      .record(language, z.record(z.string(), z.string()))
      .default({})
      .meta({
        description: 'Per language, key → text; `{0}`, `{1}` stand for the arguments.',
        examples: [{ en: { title: 'Statistics' }, 'pt-BR': { title: 'Estatísticas' } }],
      }),
  })
  .meta({ description: "The plugin's translations, under its own namespace." })

const errorCodeSchema = z
  .strictObject({
    code: z.string().regex(/^[A-Za-z0-9_.-]{1,128}$/, 'must be letters, digits, _, . and -'),
    message: z.string().min(1),
    http_status: z
      .number()
      .int()
      .min(400)
      .max(599)
      .default(500)
      .meta({ description: 'The status a route answers with when its handler fails with this code.' }),
  })
  .meta({ description: "An error code of the plugin's own; the host prefixes it: `<plugin>:<code>`." })

const groupSchema = z
  .strictObject({
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'must be a-z, 0-9, _ and -'),
    description: z.string().optional(),
  })
  .meta({ description: 'A user group the host creates for RBAC (`group:<name>` middleware).' })

const eventSubscriptionSchema = z
  .strictObject({
    type: z.string().regex(scopePatterns.events.pattern, `must be ${scopePatterns.events.hint}`),
    handler: handlerName,
  })
  .meta({
    description: 'Host events the plugin is called with (it also needs an `events` permission on them).',
  })

const capabilityShape = {
  routes: z.array(routeSchema).default([]),
  menu_items: z
    .array(menuItemSchema)
    .default([])
    .meta({ description: 'Menu entries, nested by `children`.' }),
  widgets: z.array(widgetSchema).default([]),
  jobs: z.array(jobSchema).default([]),
  templates: z.array(templateSchema).default([]),
  i18n: i18nSchema.optional(),
  error_codes: z.array(errorCodeSchema).default([]),
  groups: z.array(groupSchema).default([]),
  hidden_menu_items: z
    .array(z.string())
    .default([])
    .meta({ description: "Ids of the host's menu items to hide." }),
  events: z.array(eventSubscriptionSchema).optional(),
  landing_page: z.string().regex(/^\//, 'must start with /').optional().meta({
    description: "Where the host sends users after sign-in, below the plugin's mount point.",
  }),
  permissions: z.array(permissionSchema).default([]),
}

/**
 * What a manifest's `provides` may list: a registration's capabilities but `permissions`, which a
 * registration claims for information only and a manifest requests under `resources.permissions`
 * (in `provides` they would grant nothing, so they are refused, pointing there).
 */
const { permissions: _claimedPermissions, ...providedShape } = capabilityShape

const identityShape = {
  name: pluginName.meta({
    description: "The plugin's name: unique in a host, its routes' mount point and its error codes' prefix.",
    examples: ['hello-wasm'],
  }),
  version: semverVersion.meta({ description: "The plugin's version, semver.", examples: ['1.2.0'] }),
  description: z.string().max(2000).optional().meta({ description: 'One line on what the plugin does.' }),
  author: z.string().optional(),
  license: spdxLicense
    .optional()
    .meta({ description: 'An SPDX license expression.', examples: ['MIT', 'Apache-2.0 OR MIT'] }),
  homepage: url.optional().meta({ description: 'An http(s) URL.' }),
  min_host_version: semverRange.optional().meta({
    description: 'The host versions the plugin runs on, a semver range; checked at load.',
    examples: ['>=0.1.0'],
  }),
}

export const capabilitiesSchema: z.ZodType<PluginCapabilities> = z.strictObject(capabilityShape)

/** What `register()` must return. */
export const registrationSchema: z.ZodType<Registration> = z.strictObject({
  ...identityShape,
  ...capabilityShape,
})

const resourcesSchema = z
  .strictObject({
    memory_mb: z
      .number()
      .int()
      .min(1)
      .max(65_536)
      .optional()
      .meta({
        description:
          "Memory in MiB; the policy may lower it. wasm: each instance's linear memory cannot grow past it (a plugin holds at most `max_instances` × this). grpc: the process's resident set (RSS, read from /proc, so on Linux) is sampled every 5 s, and three samples in a row above it restart the plugin, 10–15 s after it went over; a shorter spike is let be. A process the host attached to rather than started is not watched.",
        examples: [16],
      }),
    call_timeout: duration(hour)
      .optional()
      .meta({ description: 'How long one call may take.', examples: ['500ms'] }),
    init_timeout: duration(hour)
      .optional()
      .meta({ description: 'How long `init` may take.', examples: ['5s'] }),
    shutdown_timeout: duration(hour)
      .optional()
      .meta({ description: 'How long `shutdown` may take.', examples: ['5s'] }),
    max_output_bytes: z
      .number()
      .int()
      .min(1)
      .max(1 << 30)
      .optional()
      .meta({ description: 'The largest result of one call, in bytes.' }),
    permissions: z.array(permissionSchema).default([]).meta({
      description: 'What the plugin asks of the host API; nothing is granted that is not asked for here.',
    }),
  })
  .meta({ description: 'Limits and permissions the plugin requests; its policy grants them, or less.' })

/** TypeScript source and the JavaScript a build makes of it: `src/main.ts` → `dist/main.js`. */
const typeScriptSource = /\.([mc]?)ts$/i

/**
 * A Node.js entry: built JavaScript. Node refuses TypeScript source with a bare stack
 * (ERR_UNKNOWN_FILE_EXTENSION), so the manifest says what to name instead.
 */
const nodeEntry = relativePath.refine((p) => !typeScriptSource.test(p), {
  error: (issue) => {
    const source = String(issue.input)
    const built = (source.split(/[/\\]/).pop() ?? source).replace(typeScriptSource, '.$1js')
    return `must be built JavaScript, not TypeScript source: run corral build and name its output, like entry: { node: dist/${built} }`
  },
})

const entrySchema = z
  .strictObject({
    wasm: relativePath
      .optional()
      .meta({ description: 'The module of a wasm plugin.', examples: ['build/plugin.wasm'] }),
    binary: relativePath
      .optional()
      .meta({ description: 'The executable of a grpc plugin.', examples: ['bin/plugin'] }),
    node: nodeEntry.optional().meta({
      description: 'The JavaScript file of a grpc plugin run by Node.js.',
      examples: ['dist/main.js'],
    }),
    args: z.array(z.string()).optional().meta({ description: 'Arguments for `binary` or `node`.' }),
    env: z
      .array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name'))
      .optional()
      .meta({
        description:
          "Host environment variables the plugin asks for; it gets those its policy's `env` lists too, and no others.",
      }),
  })
  .meta({
    description: "What to run, relative to the plugin's folder: exactly one of `wasm`, `binary` or `node`.",
  })

const poolSchema = z
  .strictObject({
    max_instances: z.number().int().min(1).max(64).default(4).meta({
      description: 'Instances run in parallel, each in its own worker thread. The policy may lower it.',
    }),
    wait_timeout: duration(hour)
      .prefault('5s')
      .meta({ description: 'How long a call waits for a free instance before `resource_exhausted`.' }),
    idle_timeout: duration(hour)
      .optional()
      .meta({ description: 'Idle instances beyond the first stop after this long.' }),
  })
  .meta({ description: 'The instance pool of a wasm plugin.' })

const extismSchema = z
  .strictObject({
    max_pages: z.number().int().min(1).max(65_536).optional(),
    max_var_bytes: z
      .number()
      .int()
      .min(0)
      .max(1 << 30)
      .optional(),
    max_http_response_bytes: z
      .number()
      .int()
      .min(0)
      .max(1 << 30)
      .optional(),
  })
  .meta({
    description:
      'Limits for an unmodified Extism plugin: memory pages, bytes of its vars, and of each HTTP response.',
  })

export const manifestSchema: z.ZodType<Manifest> = z
  .strictObject({
    ...identityShape,
    runtime: z.enum(['wasm', 'grpc']).meta({
      description:
        '`wasm`: a WebAssembly module in worker threads. `grpc`: a process speaking gRPC (go-plugin compatible).',
    }),
    entry: entrySchema,
    wasm: z
      .strictObject({ pool: poolSchema.prefault({}), extism: extismSchema.optional() })
      .optional()
      .meta({ description: 'Settings of a wasm plugin.' }),
    resources: resourcesSchema.prefault({}),
    config_schema: z.record(z.string(), z.unknown()).optional().meta({
      description:
        "A JSON Schema (draft 2020-12, or draft-07 by `$schema`) the plugin's config must satisfy.",
    }),
    config: z
      .record(z.string(), z.unknown())
      .default({})
      .meta({ description: "The config's defaults; the host's config for the plugin is laid over them." }),
    provides: z.strictObject(providedShape).partial().optional().meta({
      description:
        'What the plugin provides, for a plugin whose `register()` does not say it itself (a WASM module without `corral_register`). What it asks of the host goes under `resources.permissions`, not here.',
    }),
  })
  .superRefine((m, ctx) => {
    const kinds = (['wasm', 'binary', 'node'] as const).filter((k) => m.entry[k] !== undefined)
    if (kinds.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['entry'],
        message: 'must name exactly one of wasm, binary or node',
      })
      return
    }
    const [kind] = kinds
    if (m.runtime === 'wasm' && kind !== 'wasm') {
      ctx.addIssue({
        code: 'custom',
        path: ['entry', kind as string],
        message: 'a wasm plugin names its module as entry.wasm',
      })
    }
    if (m.runtime === 'grpc' && kind === 'wasm') {
      ctx.addIssue({
        code: 'custom',
        path: ['entry', 'wasm'],
        message: 'a grpc plugin names entry.binary or entry.node',
      })
    }
    if (kind === 'wasm' && (m.entry.args !== undefined || m.entry.env !== undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['entry'],
        message: 'args and env apply only to binary and node entries',
      })
    }
    if (m.runtime === 'grpc' && m.wasm !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['wasm'], message: 'applies only to runtime: wasm' })
    }
  })
  .transform((m): Manifest => {
    const { entry, wasm, ...rest } = m
    const built: Manifest = {
      ...rest,
      entry:
        entry.wasm !== undefined
          ? { wasm: entry.wasm }
          : entry.binary !== undefined
            ? { binary: entry.binary, args: entry.args ?? [], env: entry.env ?? [] }
            : { node: entry.node as string, args: entry.args ?? [], env: entry.env ?? [] },
    }
    if (m.runtime === 'wasm') built.wasm = wasm ?? { pool: { max_instances: 4, wait_timeout: 5_000 } }
    return built
  })

/** A limit given as milliseconds or as a duration with a unit. */
function policyDuration() {
  return z.union([z.number().int().min(1).max(hour), duration(hour)])
}

/** A `ResourcePolicy` as an administrator writes it (limits and rate limits may be partial). */
export const policyInputSchema = z.strictObject({
  plugin: pluginName,
  status: z.enum(['pending_review', 'approved', 'restricted', 'blocked']),
  grants: z.array(permissionSchema).default([]),
  limits: z
    .strictObject({
      memory_mb: z.number().int().min(1).max(65_536),
      call_timeout: policyDuration(),
      init_timeout: policyDuration(),
      shutdown_timeout: policyDuration(),
      max_output_bytes: z
        .number()
        .int()
        .min(1)
        .max(1 << 30),
      max_host_call_bytes: z
        .number()
        .int()
        .min(1024)
        .max(1 << 30),
      max_instances: z.number().int().min(1).max(64),
      max_open_files: z.number().int().min(1).max(4096),
      max_concurrent_calls: z.number().int().min(1).max(100_000),
      max_queued_calls: z.number().int().min(0).max(1_000_000),
    })
    .partial()
    .default({}),
  rate_limits: z
    .strictObject({
      calls_per_second: z.number().min(0.01).max(1_000_000),
      db_queries_per_minute: z.number().int().min(1).max(10_000_000),
      http_requests_per_minute: z.number().int().min(1).max(10_000_000),
    })
    .partial()
    .default({}),
  secret_config_keys: z.array(z.string().min(1)).optional(),
  env: z
    .array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name'))
    .optional(),
  unauthenticated_transport: z.boolean().optional(),
  updated_at: z.string().optional(),
  updated_by: z.string().optional(),
})
