import type { Redis } from 'ioredis'
import { deliver, type EventBus, type HostEvent, type HostEventListener } from './event-bus.js'

const channel = 'corral:events'

function isHostEvent(value: unknown): value is HostEvent {
  if (typeof value !== 'object' || value === null) return false
  const { type, plugin, at } = value as Partial<HostEvent>
  return typeof type === 'string' && typeof plugin === 'string' && typeof at === 'number'
}

/**
 * The event bus at scale: Redis pub/sub, so an event published on one host replica reaches the
 * listeners of every replica (this one included, through Redis, exactly once).
 *
 * @param publisher a connection used for commands
 * @param subscriber a connection of its own: a subscribed Redis connection can do nothing else
 */
export async function createRedisEventBus(publisher: Redis, subscriber: Redis): Promise<EventBus> {
  const listeners = new Set<HostEventListener>()
  subscriber.on('message', (from: string, message: string) => {
    if (from !== channel) return
    let event: HostEvent
    try {
      event = JSON.parse(message) as HostEvent
    } catch {
      return
    }
    // Anyone on the Redis may publish here: what is not shaped as an event is dropped. The data
    // is each listener's to check.
    if (!isHostEvent(event)) return
    deliver([...listeners], event)
  })
  await subscriber.subscribe(channel)
  return {
    async publish(event) {
      await publisher.publish(channel, JSON.stringify(event))
    },
    subscribe(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    async close() {
      listeners.clear()
      await subscriber.unsubscribe(channel)
    },
  }
}
