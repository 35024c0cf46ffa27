import type { Logger } from '@corral/types'
import { PluginError } from '@corral/types'
import { type EventBus, type HostEvent, hostEventPrefix } from '../backends/event-bus.js'
import type { ManagerEvent, ManagerEvents } from './manager-api.js'

/** The manager's own events that other replicas are told of (registries are each replica's own). */
const relayedTypes = new Set<ManagerEvent['type']>(['plugin.state', 'job.result'])

/**
 * Whether a bus message of a host type (`corral.`) is one of the manager's relayed events: the
 * host's other messages on the bus (an administrator's commands between replicas) are not events.
 */
export function isRelayedEventType(type: string): boolean {
  return (
    type.startsWith(hostEventPrefix) &&
    relayedTypes.has(type.slice(hostEventPrefix.length) as ManagerEvent['type'])
  )
}

/** What a relayed event carries on the bus. */
interface RelayedEvent {
  replica: string
  event: ManagerEvent
}

/** The manager's one event stream, plus what feeds it. */
export interface ManagerEventHub extends ManagerEvents {
  /** Delivers an event of this manager's to the listeners, and state changes and job results to the other replicas too. */
  emit(event: ManagerEvent): void
  /** Stops the feed from the bus and drops every listener. */
  close(): void
}

/**
 * State changes, job results and registry changes (emitted by this manager) and the events plugins
 * publish (`events.publish`, from `bus`: every replica's, when the bus is Redis), through one
 * subscription. State changes and job results go over the bus as `corral.plugin.state` and
 * `corral.job.result` and come out on the other replicas with their `replica`; a replica skips its
 * own (the bus delivers to the publisher too). A listener that throws does not keep the event from
 * the others.
 *
 * @example
 * const events = createManagerEventHub(backends.events, { replicaId, logger })
 * const stop = events.subscribe((event) => sse.send(event))
 */
export function createManagerEventHub(
  bus: EventBus,
  options: { replicaId: string; logger: Logger },
): ManagerEventHub {
  const { replicaId, logger } = options
  const listeners = new Set<(event: ManagerEvent) => void>()
  const deliver = (event: ManagerEvent) => {
    for (const listener of [...listeners]) {
      try {
        listener(event)
      } catch {
        // The subscriber's own failure; the other listeners still get the event.
      }
    }
  }
  const fromBus = (published: HostEvent) => {
    if (!published.type.startsWith(hostEventPrefix)) {
      deliver({
        type: 'plugin.event',
        plugin: published.plugin,
        event: published.type,
        data: published.data,
        at: published.at,
      })
      return
    }
    if (!isRelayedEventType(published.type)) return
    const relayed = published.data as RelayedEvent
    if (relayed.replica === replicaId) return
    if (`${hostEventPrefix}${relayed.event.type}` !== published.type) return
    deliver({ ...relayed.event, replica: relayed.replica } as ManagerEvent)
  }
  const stopBus = bus.subscribe(fromBus)
  return {
    emit(event) {
      deliver(event)
      if (!relayedTypes.has(event.type) || !('plugin' in event)) return
      const data: RelayedEvent = { replica: replicaId, event }
      bus
        .publish({ type: `${hostEventPrefix}${event.type}`, plugin: event.plugin, data, at: event.at })
        .catch((error) =>
          logger.log('warn', 'an event was not relayed to the other replicas', {
            plugin: event.plugin,
            error: PluginError.from(error).message,
          }),
        )
    },
    subscribe(listener) {
      listeners.add(listener)
      return () => {
        listeners.delete(listener)
      }
    },
    close() {
      stopBus()
      listeners.clear()
    },
  }
}
