import type { FastifyReply, FastifyRequest } from 'fastify'
import { csrfToken } from '../auth/csrf.js'
import type { MountedMenuItem, Registries } from '../manager-api.js'
import { type HostStrings, hostStrings, requestLanguage } from './host-strings.js'

/** What every page's template gets: the user, the words in their language, the menu, a CSRF token. */
export type PageContext = (
  request: FastifyRequest,
  reply: FastifyReply,
  title: keyof HostStrings,
) => Promise<Record<string, unknown>>

/** A menu item as the layout shows it: only what this user may see. */
interface NavItem {
  label: string
  path?: string
  children: NavItem[]
}

export function createPageContext(registries: Registries): PageContext {
  return async (request, reply, title) => {
    const language = requestLanguage(request.headers['accept-language'])
    const s = hostStrings(registries, language)
    const user = request.user
    const location = user?.admin === true ? 'admin' : 'agent'
    const nav = user === null ? [] : visibleItems(registries.menu(location), user, registries, language, s)
    return { s, title: s[title], language, user, nav, csrf: csrfToken(reply) }
  }
}

function visibleItems(
  items: readonly MountedMenuItem[],
  user: { groups: string[]; admin: boolean },
  registries: Registries,
  language: string,
  strings: HostStrings,
): NavItem[] {
  return items
    .filter((item) => item.group === undefined || user.admin || user.groups.includes(item.group))
    .map((item) => ({
      label:
        item.plugin === undefined
          ? (strings[item.label as keyof HostStrings] ?? item.label)
          : (registries.translate(item.plugin, item.label, language) ?? item.label),
      ...(item.path === undefined ? {} : { path: item.path }),
      children: visibleItems(item.children, user, registries, language, strings),
    }))
}
