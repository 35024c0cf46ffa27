import type { Registries } from '../manager-api.js'

/** The host's own words in English; a plugin's `host` namespace translates them into other languages. */
const english = {
  dashboard: 'Dashboard',
  events: 'Events',
  plugins: 'Plugins',
  jobs: 'Jobs',
  audit: 'Audit',
  users: 'Users',
  groups: 'Groups',
  admin: 'Administration',
  signOut: 'Sign out',
  signIn: 'Sign in',
  username: 'User name',
  password: 'Password',
  noWidgets: 'No plugin shows a widget yet.',
  badLogin: 'Wrong user name or password.',
} as const

export type HostStrings = Record<keyof typeof english, string>

/** The first language of an `Accept-Language` header (`de-CH,de;q=0.9` → `de`), or `en`. */
export function requestLanguage(acceptLanguage: string | undefined): string {
  const first = acceptLanguage?.split(',', 1)[0]?.split(';', 1)[0]?.trim().toLowerCase() ?? ''
  return /^[a-z]{2,3}(-[a-z0-9]+)*$/.test(first) ? (first.split('-', 1)[0] as string) : 'en'
}

/** Every host string in `language`, through the translation registry, English where none is there. */
export function hostStrings(registries: Registries, language: string): HostStrings {
  const out = {} as HostStrings
  for (const [key, text] of Object.entries(english) as Array<[keyof HostStrings, string]>)
    out[key] = registries.translate('host', key, language) ?? text
  return out
}
