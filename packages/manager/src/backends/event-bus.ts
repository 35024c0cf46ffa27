/**
 * The prefix of the event types the host itself publishes on the bus (the plugin manager's state
 * changes and job results, relayed between replicas). `events.publish` refuses it, so no plugin can
 * forge them.
 */
export const hostEventPrefix = 'corral.'

/** An event a plugin published (`events.publish`), as the host fans it out. */
export interface HostEvent {
  type: string
  data: unknown
  /** The plugin that published it. */
  plugin: string
  /** The plugin call that caused it, when known. */
  token?: string
  /** Epoch milliseconds. */
  at: number
}

/** Receives events; an error it throws is its own and does not reach the publisher. */
export type HostEventListener = (event: HostEvent) => void

/** Fan-out of plugin events to the host (SSE clients, other plugins). */
export interface EventBus {
  publish(event: HostEvent): Promise<void>
  /** Starts delivering events to `listener`; returns the function that stops it. */
  subscribe(listener: HostEventListener): () => void
  close(): Promise<void>
}

/** Delivers one event to every listener, each isolated from the others' failures. */
export function deliver(listeners: Iterable<HostEventListener>, event: HostEvent): void {
  for (const listener of listeners) {
    try {
      listener(event)
    } catch {
      // A failing listener is the subscriber's problem; the other listeners still get the event.
    }
  }
}

/**
 * The embedded event bus: in this process only.
 *
 * @example
 * const events = createLocalEventBus()
 * const stop = events.subscribe((e) => sse.send(e))
 */
export function createLocalEventBus(): EventBus {
  const listeners = new Set<HostEventListener>()
  return {
    async publish(event) {
      deliver([...listeners], event)
    },
    subscribe(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    async close() {
      listeners.clear()
    },
  }
}
