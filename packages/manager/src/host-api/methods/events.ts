import { PluginError } from '@corral/types'
import { z } from 'zod'
import { hostEventPrefix } from '../../backends/event-bus.js'
import { defineMethod, requireGrant } from '../method-handler.js'

/** `events.publish`: fans an event out through the host's event bus. Needs `events` on the type. */
export const eventsPublish = defineMethod({
  args: z.strictObject({
    type: z
      .string()
      .regex(/^[A-Za-z0-9_.:-]{1,128}$/, 'must be 1-128 characters of A-Z, a-z, 0-9, "_", ".", ":", "-"'),
    data: z.unknown().optional(),
  }),
  async run(args, scope) {
    scope.describe(args.type)
    // The host's own events on the bus (state changes, job results relayed between replicas):
    // no grant, however wide, lets a plugin forge them.
    if (args.type.startsWith(hostEventPrefix)) {
      throw new PluginError(
        'permission_denied',
        `event types starting with ${hostEventPrefix} are the host's`,
      )
    }
    requireGrant(scope, 'events', args.type)
    const data = args.data ?? null
    const size = Buffer.byteLength(JSON.stringify(data))
    if (size > scope.deps.limits.eventMaxBytes) {
      throw new PluginError(
        'resource_exhausted',
        `event data is ${size} bytes, at most ${scope.deps.limits.eventMaxBytes}`,
      )
    }
    await scope.deps.events.publish({
      type: args.type,
      data,
      plugin: scope.plugin,
      ...(scope.context.token === undefined ? {} : { token: scope.context.token }),
      at: scope.deps.now(),
    })
    return {}
  },
})
