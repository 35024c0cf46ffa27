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

const pluginName = z
  .string()
  .regex(pluginNamePattern, 'must be 2-63 characters of a-z, 0-9 and "-", starting with a letter')

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
const scopePatterns: Record<PermissionType, { pattern: RegExp; hint: string }> = {
  db: {
    pattern: /^[A-Za-z_*][A-Za-z0-9_*]*(\.[A-Za-z_*][A-Za-z0-9_*]*)?$/,
    hint: 'a table glob like stats_*',
  },
  cache: { pattern: /^[^\s]+$/, hint: 'a key glob without spaces' },
  http: {
    pattern: /^(\*|(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)*)(:\d{1,5})?$/,
    hint: 'a host glob like api.example.com',
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
    type: z.enum(permissionTypes as [PermissionType, ...PermissionType[]]),
    access: z.array(access).optional(),
    scope: z.array(z.string().min(1, 'must not be empty')).min(1, 'must list at least one glob'),
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

const routeSchema = z.strictObject({
  method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']),
  path: z
    .string()
    .regex(/^\/[A-Za-z0-9_\-./:]*$/, 'must start with / and use only path characters and :params'),
  handler: handlerName,
  middleware: z
    .array(
      z.string().regex(/^(auth|admin|group:[a-z0-9][a-z0-9_-]*)$/, 'must be auth, admin or group:<name>'),
    )
    .default([]),
  description: z.string().optional(),
})

const menuItemSchema: z.ZodType<MenuItem> = z.lazy(() =>
  z.strictObject({
    id: itemId,
    label: z.string().min(1),
    location: z.enum(['admin', 'agent', 'customer']),
    path: z.string().startsWith('/', 'must start with /').optional(),
    icon: z.string().optional(),
    order: z.number().int().optional(),
    group: z.string().optional(),
    children: z.array(menuItemSchema).optional(),
  }),
)

const widgetSchema = z.strictObject({
  id: itemId,
  title: z.string().min(1),
  handler: handlerName,
  size: z.enum(['small', 'medium', 'large', 'full']).default('medium'),
  refresh_seconds: z.number().int().min(1).max(86_400).optional(),
})

const cronExpression = z.string().refine((expr) => {
  try {
    new Cron(expr, { paused: true }).stop()
    return true
  } catch {
    return false
  }
}, 'must be a cron expression, like "*/5 * * * *"')

const jobSchema = z.strictObject({
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

const templateSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_./-]*$/, 'must be a template name'),
  content: z.string(),
  override: z.boolean().default(false),
})

const language = z
  .string()
  .regex(/^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/, 'must be a language tag like en or pt-BR')

const i18nSchema = z.strictObject({
  namespace: z.string().regex(/^[a-z][a-z0-9_-]*$/, 'must be a-z, 0-9, _ and -'),
  languages: z.array(language).min(1),
  translations: z.record(language, z.record(z.string(), z.string())).default({}),
})

const errorCodeSchema = z.strictObject({
  code: z.string().regex(/^[A-Za-z0-9_.-]{1,128}$/, 'must be letters, digits, _, . and -'),
  message: z.string().min(1),
  http_status: z.number().int().min(400).max(599).default(500),
})

const groupSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'must be a-z, 0-9, _ and -'),
  description: z.string().optional(),
})

const eventSubscriptionSchema = z.strictObject({
  type: z.string().regex(scopePatterns.events.pattern, `must be ${scopePatterns.events.hint}`),
  handler: handlerName,
})

const capabilityShape = {
  routes: z.array(routeSchema).default([]),
  menu_items: z.array(menuItemSchema).default([]),
  widgets: z.array(widgetSchema).default([]),
  jobs: z.array(jobSchema).default([]),
  templates: z.array(templateSchema).default([]),
  i18n: i18nSchema.optional(),
  error_codes: z.array(errorCodeSchema).default([]),
  groups: z.array(groupSchema).default([]),
  hidden_menu_items: z.array(z.string()).default([]),
  events: z.array(eventSubscriptionSchema).optional(),
  landing_page: z.string().startsWith('/', 'must start with /').optional(),
  permissions: z.array(permissionSchema).default([]),
}

const identityShape = {
  name: pluginName,
  version: semverVersion,
  description: z.string().max(2000).optional(),
  author: z.string().optional(),
  license: spdxLicense.optional(),
  homepage: url.optional(),
  min_host_version: semverRange.optional(),
}

export const capabilitiesSchema: z.ZodType<PluginCapabilities> = z.strictObject(capabilityShape)

/** What `register()` must return. */
export const registrationSchema: z.ZodType<Registration> = z.strictObject({
  ...identityShape,
  ...capabilityShape,
})

const resourcesSchema = z.strictObject({
  memory_mb: z.number().int().min(1).max(65_536).optional(),
  call_timeout: duration(hour).optional(),
  init_timeout: duration(hour).optional(),
  shutdown_timeout: duration(hour).optional(),
  max_output_bytes: z
    .number()
    .int()
    .min(1)
    .max(1 << 30)
    .optional(),
  permissions: z.array(permissionSchema).default([]),
})

const entrySchema = z.strictObject({
  wasm: relativePath.optional(),
  binary: relativePath.optional(),
  node: relativePath.optional(),
  args: z.array(z.string()).optional(),
  env: z
    .array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name'))
    .optional(),
})

const poolSchema = z.strictObject({
  max_instances: z.number().int().min(1).max(64).default(4),
  wait_timeout: duration(hour).default(5_000),
  idle_timeout: duration(hour).optional(),
})

const extismSchema = z.strictObject({
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

export const manifestSchema: z.ZodType<Manifest> = z
  .strictObject({
    ...identityShape,
    runtime: z.enum(['wasm', 'grpc']),
    entry: entrySchema,
    wasm: z.strictObject({ pool: poolSchema.prefault({}), extism: extismSchema.optional() }).optional(),
    resources: resourcesSchema.prefault({}),
    config_schema: z.record(z.string(), z.unknown()).optional(),
    config: z.record(z.string(), z.unknown()).default({}),
    provides: z.strictObject(capabilityShape).partial().optional(),
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
