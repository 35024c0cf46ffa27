import type { HostApi } from '@corral/plugin-sdk'

/** The namespace of the plugin's translations: the host knows key `report.title` as `stats.report.title`. */
export const namespace = 'stats'

/** The language used when the one asked for lacks a key. */
export const fallbackLanguage = 'en'

/**
 * The plugin's translations, registered with the host (`Registration.i18n`). `{0}`, `{1}` stand for
 * the translation's arguments. German lacks `widget.empty` on purpose: it falls back to English.
 */
export const translations: Record<string, Record<string, string>> = {
  en: {
    'report.title': 'Events on {0}',
    'report.kind': 'Kind',
    'report.total': 'Count',
    'widget.today': 'Today',
    'widget.total': 'All time',
    'widget.chart': 'Events per day',
    'widget.empty': 'No events yet.',
  },
  de: {
    'report.title': 'Ereignisse am {0}',
    'report.kind': 'Art',
    'report.total': 'Anzahl',
    'widget.today': 'Heute',
    'widget.total': 'Insgesamt',
    'widget.chart': 'Ereignisse pro Tag',
  },
}

const languageTag = /^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/

/** The first language of an `Accept-Language` header (`de-CH, de;q=0.9` → `de-CH`), if it is a plain tag. */
export function preferredLanguage(header: string | undefined): string | undefined {
  const first = header?.split(',')[0]?.split(';')[0]?.trim()
  return first !== undefined && languageTag.test(first) ? first : undefined
}

function format(text: string, args: readonly (string | number)[]): string {
  return text.replace(/\{(\d+)\}/g, (whole, i: string) => String(args[Number(i)] ?? whole))
}

/**
 * Translates `key` of the plugin's namespace through the host (`i18n.translate`). When the host has
 * no translation (it answers with the key itself), the plugin's own table answers: the language
 * asked for, its base language (`de` for `de-CH`), then English.
 */
export async function translate(
  host: HostApi,
  key: string,
  args: readonly (string | number)[],
  language: string | undefined,
): Promise<string> {
  const qualified = `${namespace}.${key}`
  const { text } = await host.call('i18n.translate', {
    key: qualified,
    args: [...args],
    ...(language === undefined ? {} : { language }),
  })
  if (text !== qualified) return text
  const own =
    (language === undefined
      ? undefined
      : (translations[language]?.[key] ?? translations[language.split('-')[0] ?? '']?.[key])) ??
    translations[fallbackLanguage]?.[key] ??
    qualified
  return format(own, args)
}
