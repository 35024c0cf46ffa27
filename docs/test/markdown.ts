import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/** The repository's root folder. */
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url))

/** Folders that hold no documentation of this repository: dependencies, build output, scratch. */
const skippedFolders = new Set(['node_modules', '.git', 'dist', 'build', '.turbo', '.blocks', '.data'])

/** Every Markdown file of the repository, as paths relative to its root, sorted. */
export function listMarkdownFiles(dir = repoRoot): string[] {
  const files: string[] = []
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      if (!skippedFolders.has(entry.name)) files.push(...listMarkdownFiles(path.join(dir, entry.name)))
    } else if (entry.name.endsWith('.md')) {
      files.push(path.relative(repoRoot, path.join(dir, entry.name)))
    }
  }
  return files.sort()
}

/** One fenced code block: ```` ```<lang> <attributes> ````. */
export interface CodeBlock {
  /** The Markdown file, relative to the repository's root. */
  file: string
  /** The line of the opening fence, from 1. */
  line: number
  lang: string
  /** The info string's words after the language: `run`, `continues`, `file=main.ts`, … */
  attributes: Map<string, string>
  code: string
  /**
   * Code the block assumes and does not show: the `<!-- docs-test context: … -->` comment right
   * above its fence (imports, `declare const manifest: Manifest`), with the line it starts on.
   */
  context?: { code: string; line: number }
}

/** The hidden context comment that ends at `lines[end]`, if one does. */
function contextAbove(lines: string[], end: number): { code: string; line: number } | undefined {
  if (lines[end]?.trim() !== '-->') return undefined
  for (let i = end - 1; i >= 0; i--) {
    if (lines[i]?.trim() === '<!-- docs-test context:')
      return { code: lines.slice(i + 1, end).join('\n'), line: i + 2 }
    if (lines[i]?.includes('-->')) return undefined
  }
  return undefined
}

const fencePattern = /^( {0,3})(`{3,}|~{3,})\s*([^`]*)$/

/** Whether `line` closes a block opened by `fence`: the same character, at least as many. */
function closesFence(line: string, fence: string): boolean {
  const trimmed = line.trim()
  return trimmed.length >= fence.length && trimmed === (fence[0] ?? '`').repeat(trimmed.length)
}

function parseAttributes(words: string[]): Map<string, string> {
  const attributes = new Map<string, string>()
  for (const word of words) {
    const eq = word.indexOf('=')
    if (eq === -1) attributes.set(word, '')
    else attributes.set(word.slice(0, eq), word.slice(eq + 1))
  }
  return attributes
}

/** The fenced code blocks of a Markdown text, in order. */
export function extractCodeBlocks(file: string, text: string): CodeBlock[] {
  const blocks: CodeBlock[] = []
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const open = fencePattern.exec(lines[i] ?? '')
    if (open === null) continue
    const [, indent = '', fence = '', info = ''] = open
    const [lang = '', ...words] = info.trim().split(/\s+/).filter(Boolean)
    const body: string[] = []
    let j = i + 1
    for (; j < lines.length; j++) {
      const line = lines[j] ?? ''
      if (closesFence(line, fence)) break
      body.push(line.startsWith(indent) ? line.slice(indent.length) : line)
    }
    const block: CodeBlock = {
      file,
      line: i + 1,
      lang: lang.toLowerCase(),
      attributes: parseAttributes(words),
      code: body.join('\n'),
    }
    const context = contextAbove(lines, i - 1)
    if (context !== undefined) block.context = context
    blocks.push(block)
    i = j
  }
  return blocks
}

/** The lines of a Markdown text, those of fenced code blocks blanked. */
function linesOutsideFences(text: string): string[] {
  let fence: string | undefined
  return text.split('\n').map((line) => {
    if (fence !== undefined) {
      if (closesFence(line, fence)) fence = undefined
      return ''
    }
    fence = fencePattern.exec(line)?.[2]
    return fence === undefined ? line : ''
  })
}

/** The lines of a Markdown text outside code: fenced blocks and inline code spans blanked. */
export function proseLines(text: string): string[] {
  return linesOutsideFences(text).map((line) =>
    line.replace(/(`+)[^`]*?\1/g, (span) => ' '.repeat(span.length)),
  )
}

/** One Markdown link `[text](target)` or `![alt](target)`. */
export interface MarkdownLink {
  file: string
  line: number
  target: string
}

/** The inline links of a Markdown text, outside code. */
export function extractLinks(file: string, text: string): MarkdownLink[] {
  const links: MarkdownLink[] = []
  proseLines(text).forEach((line, i) => {
    for (const match of line.matchAll(
      /\]\(\s*<?([^()\s>]+(?:\([^()\s]*\)[^()\s>]*)*)>?(?:\s+"[^"]*")?\s*\)/g,
    )) {
      links.push({ file, line: i + 1, target: match[1] ?? '' })
    }
  })
  return links
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as dashes. */
export function headingAnchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/`/g, '')
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-')
}

/** The anchors of a Markdown text's headings, numbered as GitHub numbers repeats (`-1`, `-2`). */
export function headingAnchors(text: string): Set<string> {
  const anchors = new Set<string>()
  const seen = new Map<string, number>()
  for (const line of linesOutsideFences(text)) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)
    if (heading === null) continue
    const base = headingAnchor(heading[1] ?? '')
    const count = seen.get(base) ?? 0
    seen.set(base, count + 1)
    anchors.add(count === 0 ? base : `${base}-${count}`)
  }
  for (const match of text.matchAll(/<a\s+(?:name|id)="([^"]+)"/g)) anchors.add(match[1] ?? '')
  return anchors
}

/** A Markdown file's text. */
export function readMarkdown(file: string): string {
  return readFileSync(path.join(repoRoot, file), 'utf8')
}
