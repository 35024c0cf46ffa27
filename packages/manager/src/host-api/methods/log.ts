import { logLevels, pluginLogFields } from '@corral/types'
import { z } from 'zod'
import { defineMethod } from '../method-handler.js'

/**
 * `log`: one line to the host's log, attributed to the plugin and the call that caused it. The
 * plugin's fields are capped and cannot set `level`, `message`, `plugin` or `token`
 * ({@link pluginLogFields}). Always allowed, capped at `logLinesPerSecond`.
 */
export const log = defineMethod({
  args: z.strictObject({
    level: z.enum(logLevels as [string, ...string[]]),
    message: z.string().max(8192),
    fields: z.record(z.string().max(64), z.unknown()).optional(),
  }),
  rateLimit: 'log',
  async run(args, scope) {
    const { token } = scope.context
    const attribution = token === undefined ? { plugin: scope.plugin } : { plugin: scope.plugin, token }
    scope.deps.logger.log(
      args.level as (typeof logLevels)[number],
      args.message,
      pluginLogFields(args.fields, attribution),
    )
    return {}
  },
})
