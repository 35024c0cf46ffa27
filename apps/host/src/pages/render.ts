import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import type { TemplateSpec } from '@corral/types'
import { Liquid } from 'liquidjs'
import type { MountedTemplate, Registries } from '../manager-api.js'
import { sanitizePluginTemplate } from './plugin-markup.js'

/** The host's own templates: every `<name>.liquid` of `dir`. */
export function readHostTemplates(dir: string): TemplateSpec[] {
  return readdirSync(dir)
    .filter((file) => file.endsWith('.liquid'))
    .map((file) => ({
      name: file.slice(0, -'.liquid'.length),
      content: readFileSync(path.join(dir, file), 'utf8'),
      override: false,
    }))
}

/** Renders a named template with data: a plugin's override, else the host's own. */
export type RenderPage = (name: string, data: Record<string, unknown>) => Promise<string>

/**
 * The page renderer. Templates are Liquid: logic-less enough to take from plugins, which are not
 * trusted, since a Liquid template cannot run code in the host (an Eta or EJS template could).
 * Output is HTML-escaped unless marked `| raw`. A plugin's template with `override: true` replaces
 * the host's of that name; its other templates can be included by name. A plugin's template is
 * rendered as {@link sanitizePluginTemplate} leaves it: it cannot script the page or drive htmx.
 *
 * @example
 * const render = createPageRenderer(readHostTemplates(templatesDir), manager.registries, (plugin) => true)
 * reply.type('text/html').send(await render('dashboard', { widgets }))
 */
export function createPageRenderer(
  hostTemplates: readonly TemplateSpec[],
  registries: Registries,
  /** Whether a plugin's templates are used now (an administrator approved it). */
  served: (plugin: string) => boolean,
): RenderPage {
  const host = new Map(hostTemplates.map((t) => [t.name, t.content]))
  // A registry entry is replaced, never changed, when its plugin's templates change.
  const sanitized = new WeakMap<MountedTemplate, string>()
  const source = (name: string): string | undefined => {
    const entry = registries.template(name)
    if (entry?.plugin === undefined || (!entry.override && host.has(name)) || !served(entry.plugin))
      return host.get(name)
    let content = sanitized.get(entry)
    if (content === undefined) {
      content = sanitizePluginTemplate(entry.content)
      sanitized.set(entry, content)
    }
    return content
  }
  const liquid = new Liquid({
    outputEscape: 'escape',
    strictFilters: true,
    extname: '',
    // Templates change as plugins reload: read them at each render (they are small).
    cache: false,
    relativeReference: false,
    fs: {
      resolve: (_root, file) => file,
      exists: async (name) => source(name) !== undefined,
      existsSync: (name) => source(name) !== undefined,
      readFile: async (name) => source(name) ?? '',
      readFileSync: (name) => source(name) ?? '',
      contains: async () => true,
      dirname: () => '',
      sep: '/',
    },
    root: ['templates'],
  })
  return (name, data) => liquid.renderFile(name, data)
}
