import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import type { TemplateSpec } from '@corral/types'
import { Liquid } from 'liquidjs'
import type { Registries } from '../manager-api.js'

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
 * the host's of that name; its other templates can be included by name.
 *
 * @example
 * const render = createPageRenderer(readHostTemplates(templatesDir), manager.registries)
 * reply.type('text/html').send(await render('dashboard', { widgets }))
 */
export function createPageRenderer(
  hostTemplates: readonly TemplateSpec[],
  registries: Registries,
): RenderPage {
  const host = new Map(hostTemplates.map((t) => [t.name, t.content]))
  const source = (name: string): string | undefined => {
    const plugin = registries.template(name)
    if (plugin !== undefined && (plugin.override || !host.has(name))) return plugin.content
    return host.get(name)
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
