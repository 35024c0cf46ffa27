import { existsSync, statSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { extractLinks, headingAnchors, listMarkdownFiles, readMarkdown, repoRoot } from './markdown.js'

/** Why `target`, linked from `file`, leads nowhere; undefined when it leads where it says. */
function brokenReason(file: string, target: string): string | undefined {
  // Nothing a user reads points outside the repository: name a project in plain text instead.
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return 'leads outside the repository (only relative links)'
  const [pathPart = '', anchor] = target.split('#')
  const resolved =
    pathPart === ''
      ? path.join(repoRoot, file)
      : path.resolve(repoRoot, path.dirname(file), decodeURI(pathPart))
  if (path.relative(repoRoot, resolved).startsWith('..')) return 'leads outside the repository'
  if (!existsSync(resolved)) return `${path.relative(repoRoot, resolved)} does not exist`
  if (anchor === undefined) return undefined
  if (!resolved.endsWith('.md') || statSync(resolved).isDirectory()) return 'an anchor needs a Markdown file'
  const anchors = headingAnchors(readMarkdown(path.relative(repoRoot, resolved)))
  return anchors.has(anchor)
    ? undefined
    : `#${anchor} is not a heading of ${path.relative(repoRoot, resolved)}`
}

describe('Markdown links', () => {
  for (const file of listMarkdownFiles()) {
    it(`${file}: every link leads to a file or a heading of the repository`, () => {
      const broken = extractLinks(file, readMarkdown(file)).flatMap((link) => {
        const reason = brokenReason(link.file, link.target)
        return reason === undefined ? [] : [`${link.file}:${link.line} ${link.target}: ${reason}`]
      })
      expect(broken).toEqual([])
    })
  }
})
