import { matchScope } from '@corral/manifest'
import type { EffectiveGrant, EventSubscription, Logger } from '@corral/types'
import { PluginError } from '@corral/types'
import { type EventBus, type HostEvent, hostEventPrefix } from '../backends/event-bus.js'
import { isRelayedEventType } from './manager-events.js'

/** How many events wait for one plugin by default; past it new ones are dropped. */
export const defaultEventQueueSize = 100

/** A plugin that may take events now: its subscriptions and the grant that bounds them. */
export interface EventSubscriber {
  plugin: string
  subscriptions: readonly EventSubscription[]
  grant: EffectiveGrant
}

/** Options of {@link deliverSubscribedEvents}. */
export interface EventSubscriptionOptions {
  bus: EventBus
  /** The plugins running now (asked at each event, so grants and reloads count at once). */
  subscribers(): Iterable<EventSubscriber>
  /** Calls the handler (the manager's call path: refused unless it runs, rate-limited, in its metrics). */
  call(plugin: string, handler: string, event: HostEvent): Promise<unknown>
  /** Told of each event dropped because the plugin's queue was full. */
  dropped(plugin: string): void
  logger: Logger
  /** Events waiting per plugin before new ones are dropped. Default {@link defaultEventQueueSize}. */
  queueSize?: number
}

/**
 * Whether glob `pattern` covers event `type`. A host `corral.` type is covered only when the glob
 * names that prefix, and only if it is one of the manager's relayed events: the host's other
 * messages on the bus (an administrator's commands between replicas, which name the host's paths)
 * are never a plugin's, whatever its grant.
 */
function covers(pattern: string, type: string): boolean {
  if (type.startsWith(hostEventPrefix) && !(pattern.startsWith(hostEventPrefix) && isRelayedEventType(type)))
    return false
  return matchScope(pattern, type)
}

/** Whether the grant lets the plugin take events of `type`: an `events` permission whose scope covers it. */
export function mayReceive(grant: EffectiveGrant, type: string): boolean {
  return grant.permissions.some(
    (permission) => permission.type === 'events' && permission.scope.some((glob) => covers(glob, type)),
  )
}

/** The handlers of `subscriptions` that take an event of `type`. */
export function handlersFor(subscriptions: readonly EventSubscription[], type: string): string[] {
  return subscriptions.filter((s) => covers(s.type, type)).map((s) => s.handler)
}

/** One plugin's waiting events, taken one at a time. */
interface PluginQueue {
  waiting: Array<{ handler: string; event: HostEvent }>
  running: boolean
  /** Whether events are being dropped now (logged once per run of drops). */
  dropping: boolean
}

/**
 * Delivers the bus's events (every plugin's and the host's, from every replica on a shared bus) to
 * the plugins that subscribe to their type and whose grant covers it, as calls of their handlers.
 * A plugin never gets its own events. The bus's listener only queues: each plugin has a bounded
 * queue taken one call at a time, so a slow or failing handler delays only its own plugin's events,
 * and once its queue is full new events for it are dropped, counted (`dropped`) and logged.
 * Returns the function that stops delivering (waiting events are dropped uncounted).
 *
 * @example
 * const stop = deliverSubscribedEvents({ bus: backends.events, subscribers, call, dropped, logger })
 */
export function deliverSubscribedEvents(options: EventSubscriptionOptions): () => void {
  const { logger } = options
  const queueSize = options.queueSize ?? defaultEventQueueSize
  const queues = new Map<string, PluginQueue>()
  let stopped = false

  async function drain(plugin: string, queue: PluginQueue): Promise<void> {
    queue.running = true
    for (let next = queue.waiting.shift(); next !== undefined && !stopped; next = queue.waiting.shift()) {
      try {
        await options.call(plugin, next.handler, next.event)
      } catch (error) {
        logger.log('warn', `the handler ${next.handler} failed on event ${next.event.type}`, {
          plugin,
          error: PluginError.from(error).message,
        })
      }
    }
    queue.running = false
    if (queue.waiting.length === 0) queues.delete(plugin)
  }

  function enqueue(plugin: string, handler: string, event: HostEvent): void {
    let queue = queues.get(plugin)
    if (queue === undefined) {
      queue = { waiting: [], running: false, dropping: false }
      queues.set(plugin, queue)
    }
    if (queue.waiting.length >= queueSize) {
      options.dropped(plugin)
      if (!queue.dropping) {
        logger.log('warn', `events dropped: ${queueSize} are waiting for the plugin's handlers`, {
          plugin,
          event: event.type,
        })
      }
      queue.dropping = true
      return
    }
    queue.dropping = false
    queue.waiting.push({ handler, event })
    if (!queue.running) void drain(plugin, queue)
  }

  const unsubscribe = options.bus.subscribe((event) => {
    if (stopped) return
    for (const subscriber of options.subscribers()) {
      if (subscriber.plugin === event.plugin || !mayReceive(subscriber.grant, event.type)) continue
      for (const handler of handlersFor(subscriber.subscriptions, event.type)) {
        enqueue(subscriber.plugin, handler, event)
      }
    }
  })
  return () => {
    stopped = true
    unsubscribe()
    queues.clear()
  }
}
