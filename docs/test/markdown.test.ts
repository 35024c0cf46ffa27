import { describe, expect, it } from 'vitest'
import { extractCodeBlocks, extractLinks, headingAnchors } from './markdown.js'
import { checkedLanguage, groupPrograms } from './programs.js'

describe('extractCodeBlocks', () => {
  it('reads the language, the attributes and the body of each fence', () => {
    const text = ['# T', '', '```ts run file=main.ts', 'const a = 1', '```', '', '~~~sh', 'ls', '~~~'].join(
      '\n',
    )
    const blocks = extractCodeBlocks('x.md', text)
    expect(blocks.map((b) => [b.line, b.lang, [...b.attributes], b.code])).toEqual([
      [
        3,
        'ts',
        [
          ['run', ''],
          ['file', 'main.ts'],
        ],
        'const a = 1',
      ],
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
    const text = [
      'See [a](a.md#x) and `[b](b.md)`.',
      '```md',
      '[c](c.md)',
      '```',
      '![d](img/d.png "D")',
    ].join('\n')
    expect(extractLinks('x.md', text).map((l) => [l.line, l.target])).toEqual([
      [1, 'a.md#x'],
      [5, 'img/d.png'],
    ])
  })
})

describe('headingAnchors', () => {
  it('makes anchors as GitHub does, numbering repeats', () => {
    const text = [
      '# The `corral` command',
      '## Limits: the host enforces',
      '## Limits: the host enforces',
      '```',
      '# not a heading',
      '```',
    ].join('\n')
    expect([...headingAnchors(text)]).toEqual([
      'the-corral-command',
      'limits-the-host-enforces',
      'limits-the-host-enforces-1',
    ])
  })
})

describe('groupPrograms', () => {
  const text = [
    '<!-- docs-test context:', // 1
    "import type { Manifest } from '@corral/types'", // 2
    'declare const manifest: Manifest', // 3
    '-->', // 4
    '```ts', // 5
    'const a = manifest.name', // 6
    '```', // 7
    '```ts continues', // 8
    'console.log(a)', // 9
    '```', // 10
    '```yaml', // 11
    'x: 1', // 12
    '```', // 13
  ].join('\n')

  it('puts a hidden context before its block and a continuing block after, each line mapped back', () => {
    const [ts, yaml, ...rest] = groupPrograms(extractCodeBlocks('x.md', text))
    expect(rest).toEqual([])
    expect(ts?.code.split('\n')).toEqual([
      "import type { Manifest } from '@corral/types'",
      'declare const manifest: Manifest',
      'const a = manifest.name',
      'console.log(a)',
    ])
    expect(ts?.sourceLines).toEqual([2, 3, 6, 9])
    expect([yaml?.lang, yaml?.line]).toEqual(['yaml', 11])
  })

  it('refuses a block that continues nothing', () => {
    expect(() => groupPrograms(extractCodeBlocks('x.md', '```sh continues\nls\n```'))).toThrow(
      'x.md:1: a block that continues needs a sh block before it',
    )
  })

  it('checks `ts assemblyscript` as AssemblyScript and folds aliases', () => {
    const blocks = extractCodeBlocks('x.md', '```ts assemblyscript\n```\n```typescript\n```\n```bash\n```')
    expect(blocks.map(checkedLanguage)).toEqual(['assemblyscript', 'ts', 'sh'])
  })
})
