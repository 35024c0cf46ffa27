import { existsSync, statSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { extractLinks, headingAnchors, listMarkdownFiles, readMarkdown, repoRoot } from './markdown.js'

/**
 * The only sites the docs may link to: the projects Corral builds on, by their own addresses. A
 * link anywhere else, or to a file outside the repository, is a mistake to fix or a site to add.
 */
const allowedSites = new Set([
  'github.com',
  'extism.org',
  'www.assemblyscript.org',
  'nodejs.org',
  'developer.mozilla.org',
  'json-schema.org',
  'spdx.org',
  'standardschema.dev',
  'semver.org',
  'grpc.io',
  'protobuf.dev',
  'go.dev',
  'pkg.go.dev',
  'wasi.dev',
  'webassembly.org',
  'zod.dev',
])

/** Why `target`, linked from `file`, leads nowhere; undefined when it leads where it says. */
function brokenReason(file: string, target: string): string | undefined {
  if (/^https?:\/\//.test(target)) {
    const site = new URL(target).hostname
    return allowedSites.has(site) ? undefined : `${site} is not one of the allowed sites`
  }
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return 'only relative links and http(s) links are allowed'
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
    it(`${file}: every link leads to a file, a heading or an allowed site`, () => {
      const broken = extractLinks(file, readMarkdown(file)).flatMap((link) => {
        const reason = brokenReason(link.file, link.target)
        return reason === undefined ? [] : [`${link.file}:${link.line} ${link.target}: ${reason}`]
      })
      expect(broken).toEqual([])
    })
  }
})
