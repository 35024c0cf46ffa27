import { describe, expect, it } from 'vitest'
import { extractCodeBlocks, extractLinks, headingAnchors } from './markdown.js'

describe('extractCodeBlocks', () => {
  it('reads the language, the attributes and the body of each fence', () => {
    const text = ['# T', '', '```ts run file=main.ts', 'const a = 1', '```', '', '~~~sh', 'ls', '~~~'].join('\n')
    const blocks = extractCodeBlocks('x.md', text)
    expect(blocks.map((b) => [b.line, b.lang, [...b.attributes], b.code])).toEqual([
      [3, 'ts', [['run', ''], ['file', 'main.ts']], 'const a = 1'],
      [7, 'sh', [], 'ls'],
    ])
  })

  it('keeps a shorter fence inside a longer one as code', () => {
    const blocks = extractCodeBlocks('x.md', ['````md', '```ts', 'x', '```', '````'].join('\n'))
    expect(blocks.map((b) => b.code)).toEqual(['```ts\nx\n```'])
  })
})

describe('extractLinks', () => {
  it('finds links in prose, not in code', () => {
    const text = ['See [a](a.md#x) and `[b](b.md)`.', '```md', '[c](c.md)', '```', '![d](img/d.png "D")'].join('\n')
    expect(extractLinks('x.md', text).map((l) => [l.line, l.target])).toEqual([
      [1, 'a.md#x'],
      [5, 'img/d.png'],
    ])
  })
})

describe('headingAnchors', () => {
  it('makes anchors as GitHub does, numbering repeats', () => {
    const text = ['# The `corral` command', '## Limits: the host enforces', '## Limits: the host enforces', '```', '# not a heading', '```'].join('\n')
    expect([...headingAnchors(text)]).toEqual(['the-corral-command', 'limits-the-host-enforces', 'limits-the-host-enforces-1'])
  })
})
