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
 * every value it writes is escaped). Liquid the host cannot read is dropped with its tag. The
 * Liquid kept stands only where it cannot change the markup around it: a template with a tag
 * inside an HTML tag keeps no Liquid at all.
 */
export function sanitizePluginTemplate(source: string): string {
  const text = source.replace(/[\uE000\uE001]/g, '')
  let tokens: TopLevelToken[]
  try {
    tokens = new Tokenizer(text).readTopLevelTokens()
  } catch {
    // Liquid that does not parse would fail the page: its markup is shown, with no Liquid in it.
    return escapeBraces(sanitizePluginHtml(text))
  }
  const kept: { text: string; isTag: boolean }[] = []
  let html = ''
  for (const token of tokens) {
    if (token.kind === TokenKind.HTML) {
      html += token.getText()
      continue
    }
    html += `${open}${kept.length}${close}`
    kept.push({ text: isSafeLiquid(token) ? token.getText() : '', isTag: token.kind === TokenKind.Tag })
  }
  const markup = escapeBraces(sanitizePluginHtml(html))
  if (hasTagInsideMarkup(markup, kept)) return markup.replace(placeholders, '')
  return markup.replace(placeholders, (_, index: string) => kept[Number(index)]?.text ?? '')
}

/**
 * The sanitizer writes the braces of `&#123;` as braces, and joins two across what it removes
 * (`{<x></x>{`): either would be read as Liquid the check above never saw. In the sanitized HTML
 * every brace is an entity, for the browser to show.
 */
function escapeBraces(html: string): string {
  return html.replaceAll('{', '&#123;').replaceAll('}', '&#125;')
}

/**
 * Whether a kept Liquid tag stands inside an HTML tag. There it could remove or insert the quote
 * or bracket that ends an attribute (`<a title="{% if false %}">{% endif %}" hx-post=…`), making
 * markup the sanitizer never saw. Between HTML tags it can only drop or repeat whole tags and
 * escaped text. An output may stand in an attribute's value: the value is quoted, and the output
 * escaped. The sanitizer writes `<` and `>` inside text and values as entities, so the brackets
 * found are tags'.
 */
function hasTagInsideMarkup(markup: string, kept: readonly { text: string; isTag: boolean }[]): boolean {
  let insideTag = false
  for (let i = 0; i < markup.length; i++) {
    const char = markup[i]
    if (char === '<') insideTag = true
    else if (char === '>') insideTag = false
    else if (char === open && insideTag) {
      const end = markup.indexOf(close, i)
      const token = kept[Number(markup.slice(i + 1, end))]
      if (token?.isTag && token.text !== '') return true
      i = end
    }
  }
  return false
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
