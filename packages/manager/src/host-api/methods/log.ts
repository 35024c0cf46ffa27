import { logLevels } from '@corral/types'
import { z } from 'zod'
import { defineMethod } from '../method-handler.js'

/**
 * `log`: one line to the host's log, attributed to the plugin and the call that caused it (the
 * plugin cannot override those fields). Always allowed, capped at `logLinesPerSecond`.
 */
export const log = defineMethod({
  args: z.strictObject({
    level: z.enum(logLevels as [string, ...string[]]),
    message: z.string().max(8192),
    fields: z.record(z.string().max(64), z.unknown()).optional(),
  }),
  rateLimit: 'log',
  async run(args, scope) {
    const fields: Record<string, unknown> = { ...args.fields, plugin: scope.plugin }
    if (scope.context.token !== undefined) fields.token = scope.context.token
    scope.deps.logger.log(args.level as (typeof logLevels)[number], args.message, fields)
    return {}
  },
})
