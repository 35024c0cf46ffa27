import { pluginNamePattern } from '@corral/manifest'
import { PluginError } from '@corral/types'
import { z } from 'zod'
import { defineMethod, requireGrant } from '../method-handler.js'

/**
 * `plugin.call`: calls a function of another plugin. Needs `plugin_call` on the target's name.
 * The caller's identity travels in the chain; a chain that would visit a plugin twice is refused
 * (`permission_denied`), one deeper than `maxCallDepth` too (`resource_exhausted`); the inner call
 * gets the outer call's deadline.
 */
export const pluginCall = defineMethod({
  args: z.strictObject({
    plugin: z.string().regex(pluginNamePattern, 'must be a plugin name'),
    fn: z.string().min(1).max(128),
    args: z.unknown().optional(),
  }),
  async run(args, scope) {
    scope.describe(`${args.plugin}.${args.fn}`)
    requireGrant(scope, 'plugin_call', args.plugin)
    const chain = [...(scope.context.chain ?? []), scope.plugin]
    if (chain.includes(args.plugin)) {
      throw new PluginError(
        'permission_denied',
        `call cycle refused: ${[...chain, args.plugin].join(' -> ')}`,
        {
          plugin: scope.plugin,
        },
      )
    }
    if (chain.length >= scope.deps.limits.maxCallDepth) {
      throw new PluginError(
        'resource_exhausted',
        `plugin.call chain deeper than ${scope.deps.limits.maxCallDepth}: ${[...chain, args.plugin].join(' -> ')}`,
        { plugin: scope.plugin },
      )
    }
    const callPlugin = scope.deps.callPlugin
    if (callPlugin === undefined) throw new PluginError('unavailable', 'this host does not offer plugin.call')
    return callPlugin(args.plugin, args.fn, args.args ?? null, {
      caller: scope.plugin,
      chain,
      deadline: scope.deadline,
      signal: scope.signal,
      ...(scope.context.token === undefined ? {} : { token: scope.context.token }),
    })
  },
})
