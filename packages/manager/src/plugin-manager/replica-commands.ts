import type { Logger } from '@corral/types'
import { PluginError } from '@corral/types'
import { z } from 'zod'
import { type EventBus, type HostEvent, hostEventPrefix } from '../backends/event-bus.js'

/**
 * The bus type of an administrator's plugin command. It is in the host's `corral.` namespace, which
 * `events.publish` refuses to every plugin, so no plugin can send one.
 */
export const replicaCommandType = `${hostEventPrefix}command`

const pluginName = z.string().min(1).max(256)
const command = z.union([
  z.strictObject({ action: z.literal('load'), plugin: pluginName, path: z.string().min(1).max(4096) }),
  z.strictObject({ action: z.enum(['unload', 'reload', 'reset', 'policy']), plugin: pluginName }),
])
/** What a command carries on the bus: it is checked field by field, since anyone on the bus can publish. */
const message = z.strictObject({ replica: z.string().min(1).max(256), command })

/**
 * An administrator's `load`, `unload`, `reload` or `reset` of one plugin, for every replica; or
 * `policy`: they stored the plugin's policy, which every replica applies at once.
 */
export type ReplicaCommand = z.infer<typeof command>

/** The administrators' commands between replicas sharing one event bus. */
export interface ReplicaCommands {
  /** Tells the other replicas to run `command` (this replica runs it itself); a failed publish is logged. */
  send(command: ReplicaCommand): void
  /** Stops taking commands from the bus. */
  close(): void
}

/**
 * Sends this replica's plugin commands to the others over `bus` as {@link replicaCommandType}, and
 * runs theirs here through `run`. A replica skips its own (the bus delivers to the publisher too:
 * with the embedded bus nothing else ever arrives, so a lone host is unchanged). A malformed
 * message is dropped, and a command that fails here is not this replica's caller's failure: both
 * are logged, and a failed load or reload is in the plugin's history and `lastError` too.
 *
 * @example
 * const commands = createReplicaCommands(backends.events, { replicaId, logger, run })
 * commands.send({ action: 'reload', plugin: 'stats' })
 */
export function createReplicaCommands(
  bus: EventBus,
  options: {
    replicaId: string
    logger: Logger
    /** Runs another replica's command here; `from` is that replica's id. */
    run(command: ReplicaCommand, from: string): Promise<unknown>
  },
): ReplicaCommands {
  const { replicaId, logger, run } = options
  const fromBus = (published: HostEvent) => {
    if (published.type !== replicaCommandType) return
    const parsed = message.safeParse(published.data)
    if (!parsed.success) {
      logger.log('warn', 'a malformed replica command was dropped', {
        error: z.prettifyError(parsed.error),
      })
      return
    }
    const { replica, command } = parsed.data
    if (replica === replicaId) return
    run(command, replica).catch((error) =>
      logger.log('warn', `${command.action} sent by replica ${replica} failed on this one`, {
        plugin: command.plugin,
        error: PluginError.from(error).message,
      }),
    )
  }
  const stop = bus.subscribe(fromBus)
  return {
    send(command) {
      bus
        .publish({
          type: replicaCommandType,
          plugin: command.plugin,
          data: { replica: replicaId, command },
          at: Date.now(),
        })
        .catch((error) =>
          logger.log('warn', `${command.action} was not sent to the other replicas`, {
            plugin: command.plugin,
            error: PluginError.from(error).message,
          }),
        )
    },
    close: stop,
  }
}
