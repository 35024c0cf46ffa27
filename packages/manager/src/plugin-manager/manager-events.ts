import type { EventBus } from '../backends/event-bus.js'
import type { ManagerEvent, ManagerEvents } from './manager-api.js'

/** The manager's one event stream, plus what feeds it. */
export interface ManagerEventHub extends ManagerEvents {
  emit(event: ManagerEvent): void
  /** Stops the feed from the bus and drops every listener. */
  close(): void
}

/**
 * State changes, job results and registry changes (emitted by this manager) and the events plugins
 * publish (`events.publish`, from `bus`: every replica's, when the bus is Redis), through one
 * subscription. A listener that throws does not keep the event from the others.
 *
 * @example
 * const events = createManagerEventHub(backends.events)
 * const stop = events.subscribe((event) => sse.send(event))
 */
export function createManagerEventHub(bus: EventBus): ManagerEventHub {
  const listeners = new Set<(event: ManagerEvent) => void>()
  const emit = (event: ManagerEvent) => {
    for (const listener of [...listeners]) {
      try {
        listener(event)
      } catch {
        // The subscriber's own failure; the other listeners still get the event.
      }
    }
  }
  const stopBus = bus.subscribe((published) =>
    emit({
      type: 'plugin.event',
      plugin: published.plugin,
      event: published.type,
      data: published.data,
      at: published.at,
    }),
  )
  return {
    emit,
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
