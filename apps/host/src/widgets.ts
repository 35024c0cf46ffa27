import { isPluginError, PluginError } from '@corral/types'
import sanitizeHtml from 'sanitize-html'
import type { MountedWidget, PluginManager } from './manager-api.js'
import { sanitizePluginHtml } from './pages/plugin-markup.js'
import { isServed } from './served-plugins.js'
import type { SseHub } from './sse.js'

/** A widget with its current HTML (sanitized). */
export interface RenderedWidget extends MountedWidget {
  html: string
}

export interface WidgetFeed {
  /** Every widget of the running plugins, in the registry's order, rendered now (in `language` when given). */
  renderAll(language?: string): Promise<RenderedWidget[]>
  /** Starts pushing widgets over SSE: on their refresh period, and when their plugin publishes an event. */
  start(renderGrid: (widgets: RenderedWidget[]) => Promise<string>, onError: (error: unknown) => void): void
  stop(): void
}

export const widgetEvent = (widget: Pick<MountedWidget, 'plugin' | 'id'>) =>
  `widget:${widget.plugin}:${widget.id}`

export function createWidgetFeed(manager: PluginManager, hub: SseHub, timeoutMs: number): WidgetFeed {
  const lastPushed = new Map<string, number>()
  let timer: NodeJS.Timeout | undefined
  let unsubscribe: (() => void) | undefined
  const served = () => manager.registries.widgets().filter((widget) => isServed(manager, widget.plugin))

  async function render(widget: MountedWidget, language?: string): Promise<RenderedWidget> {
    try {
      const args = language === undefined ? { widget: widget.id } : { widget: widget.id, language }
      const out = await manager.call(widget.plugin, widget.handler, args, { timeoutMs })
      const html = typeof out === 'string' ? out : JSON.stringify(out)
      return { ...widget, html: sanitizePluginHtml(html) }
    } catch (error) {
      const e = isPluginError(error) ? error : PluginError.from(error)
      return {
        ...widget,
        html: `<p class="widget-error">${sanitizeHtml(`${e.code}: ${e.rawMessage}`, { allowedTags: [] })}</p>`,
      }
    }
  }
  async function push(widget: MountedWidget): Promise<void> {
    lastPushed.set(widgetEvent(widget), Date.now())
    hub.broadcast(widgetEvent(widget), (await render(widget)).html)
  }

  const feed: WidgetFeed = {
    renderAll: (language) => Promise.all(served().map((widget) => render(widget, language))),
    start(renderGrid, onError) {
      unsubscribe = manager.events.subscribe((event) => {
        if (hub.clients === 0) return
        if (event.type === 'plugin.event')
          for (const widget of served()) if (widget.plugin === event.plugin) void push(widget)
        if (event.type === 'registry.changed')
          feed
            .renderAll()
            .then(async (widgets) => hub.broadcast('widgets', await renderGrid(widgets)))
            .catch(onError)
      })
      // One tick a second serves every refresh period; nothing is rendered while nobody watches.
      timer = setInterval(() => {
        if (hub.clients === 0) return
        const now = Date.now()
        for (const widget of served()) {
          const every = widget.refresh_seconds
          if (every === undefined) continue
          if (now - (lastPushed.get(widgetEvent(widget)) ?? 0) >= every * 1000) void push(widget)
        }
      }, 1000)
      timer.unref()
    },
    stop() {
      clearInterval(timer)
      unsubscribe?.()
    },
  }
  return feed
}
