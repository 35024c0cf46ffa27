/**
 * What a plugin may put on the host's pages. Plugins are not trusted, and the host's pages run in
 * the signed-in user's session with htmx, which acts on attributes (`hx-post`, `data-hx-post`, …)
 * as a script would: plugin markup keeps text, structure, links, images and inline SVG, and loses
 * scripts, styles, forms, event handlers and every attribute htmx reads.
 */
import { type TagToken, Tokenizer, TokenKind, type TopLevelToken } from 'liquidjs'
import sanitizeHtml from 'sanitize-html'

/** liquidjs exports its top-level token type but not the output token in it. */
type OutputToken = Exclude<TopLevelToken, TagToken> & { content: string }

/** Inline SVG charts: shapes and text, never scripts, links or foreign objects. */
const svgTags = ['svg', 'g', 'rect', 'circle', 'line', 'path', 'polyline', 'polygon', 'text', 'title']
const svgShapeAttributes = [
  'x',
  'y',
  'x1',
  'y1',
  'x2',
  'y2',
  'cx',
  'cy',
  'r',
  'width',
  'height',
  'd',
  'points',
  'fill',
  'stroke',
  'stroke-width',
  'font-size',
  'text-anchor',
  'transform',
  'opacity',
]

const markup: sanitizeHtml.IOptions = {
  allowedTags: [...sanitizeHtml.defaults.allowedTags, 'img', 'progress', 'meter', ...svgTags],
  allowedAttributes: {
    '*': ['class', 'title', 'id'],
    a: ['href'],
    img: ['src', 'alt'],
    meter: ['value', 'min', 'max'],
    progress: ['value', 'max'],
    svg: ['xmlns', 'viewbox', 'width', 'height', 'role', 'aria-label'],
    ...Object.fromEntries(svgTags.filter((t) => t !== 'svg').map((t) => [t, svgShapeAttributes])),
  },
  allowedSchemes: ['http', 'https', 'mailto'],
}

/** A plugin's HTML (a widget's), as the host puts it on a page. */
export function sanitizePluginHtml(html: string): string {
  return sanitizeHtml(html, markup)
}

/**
 * The Liquid tags a plugin's template may use: logic, variables and other templates. The others
 * write text unescaped (`raw`, `cycle`, `tablerow`) or hold statements this list would not see
 * (`liquid`, `echo`); they are dropped.
 */
const pluginTemplateTags = new Set([
  'if',
  'elsif',
  'else',
  'endif',
  'unless',
  'endunless',
  'case',
  'when',
  'endcase',
  'for',
  'endfor',
  'break',
  'continue',
  'assign',
  'capture',
  'endcapture',
  'increment',
  'decrement',
  'render',
  'include',
  'layout',
  'block',
  'endblock',
  'comment',
  'endcomment',
  '#',
])

// Characters of Unicode's private use area stand in for Liquid tokens while the HTML around them
// is sanitized; a template's own are removed first, so that it cannot forge one.
const open = '\uE000'
const close = '\uE001'
const placeholders = /\uE000(\d+)\uE001/g

/**
 * A plugin's Liquid template as the host renders it: its HTML sanitized as a widget's is, and of
 * its Liquid only tags of {@link pluginTemplateTags} and outputs without the `raw` filter (so
 * every value it writes is escaped). Liquid the host cannot read is dropped with its tag.
 */
export function sanitizePluginTemplate(source: string): string {
  let tokens: TopLevelToken[]
  try {
    tokens = new Tokenizer(source.replace(/[\uE000\uE001]/g, '')).readTopLevelTokens()
  } catch {
    // Liquid that does not parse would fail the page: its text is shown, with no Liquid left in it.
    return sanitizePluginHtml(source).replaceAll('{', '&#123;')
  }
  const kept: string[] = []
  let html = ''
  for (const token of tokens) {
    const text = token.getText()
    if (token.kind === TokenKind.HTML) {
      html += text
      continue
    }
    html += `${open}${kept.length}${close}`
    kept.push(isSafeLiquid(token) ? text : '')
  }
  return sanitizePluginHtml(html).replace(placeholders, (_, index: string) => kept[Number(index)] ?? '')
}

function isSafeLiquid(token: TopLevelToken): boolean {
  if (token.kind === TokenKind.Tag) return pluginTemplateTags.has((token as TagToken).name)
  // An output: escaped unless one of its filters is `raw`.
  try {
    const value = new Tokenizer((token as OutputToken).content).readFilteredValue()
    return value.filters.every((filter) => filter.name !== 'raw')
  } catch {
    return false
  }
}
