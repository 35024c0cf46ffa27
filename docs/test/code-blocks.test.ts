import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { checkAssemblyScript, checkC, checkGo, checkJson, checkShell, checkYaml } from './check-programs.js'
import { checkTypeScript, type TypeScriptResults } from './check-typescript.js'
import { extractCodeBlocks, listMarkdownFiles, readMarkdown, repoRoot } from './markdown.js'
import { groupPrograms, outputLanguages, type Program, programName } from './programs.js'

// Every fenced code block of every Markdown file, checked by its language (see docs/README.md).

const workDir = path.join(repoRoot, 'docs', '.blocks')
const programs: Program[] = []
const groupingErrors: string[] = []
for (const file of listMarkdownFiles()) {
  try {
    programs.push(...groupPrograms(extractCodeBlocks(file, readMarkdown(file))))
  } catch (error) {
    groupingErrors.push((error as Error).message)
  }
}
const ofLanguage = (lang: string) => programs.filter((p) => p.lang === lang)
/** The blocks of a program's Markdown file saved as files (`file=<name>`) that are not compiled. */
const filesBeside = (program: Program) =>
  programs.filter((p) => p.file === program.file && p.attributes.has('file') && p.lang !== 'ts')

it('every block continues a block before it, when it says so', () => {
  expect(groupingErrors).toEqual([])
})

it('every block names its language (text for output)', () => {
  const checked = new Set(['ts', 'assemblyscript', 'yaml', 'json', 'sh', 'c', 'go'])
  const unknown = programs
    .filter((p) => !checked.has(p.lang) && !outputLanguages.has(p.lang))
    .map((p) => `${programName(p)}: ${p.lang === '' ? 'no language' : `no check for ${p.lang}`}`)
  expect(unknown).toEqual([])
})

describe('TypeScript blocks type-check against the workspace packages (and run, when they say run)', () => {
  let results: Promise<TypeScriptResults> | undefined
  const typescript = () => {
    results ??= checkTypeScript(ofLanguage('ts'), path.join(workDir, 'ts'))
    return results
  }

  it('the compiler reports nothing outside the blocks', { timeout: 120_000 }, async () => {
    expect((await typescript()).unplaced).toEqual([])
  })
  for (const program of ofLanguage('ts')) {
    it(programName(program), { timeout: 120_000 }, async () => {
      const { errors, execute } = await typescript()
      expect(errors.get(program)).toEqual([])
      if (program.attributes.has('run')) await execute(program, filesBeside(program))
    })
  }
})

const checks: [string, string, (program: Program) => unknown][] = [
  [
    'assemblyscript',
    'AssemblyScript blocks compile with asc',
    (p) => checkAssemblyScript(p, path.join(workDir, 'as')),
  ],
  ['yaml', 'YAML blocks parse (manifests by parseManifest, policies by parsePolicy)', checkYaml],
  ['json', 'JSON blocks parse', checkJson],
  ['sh', 'shell blocks pass bash -n (and run in a temp folder, when they say run)', checkShell],
  ['c', 'C blocks compile for wasm32-wasi against the C SDK', checkC],
  ['go', 'Go blocks compile against the Go SDK', checkGo],
]
for (const [lang, title, check] of checks) {
  describe(title, () => {
    for (const program of ofLanguage(lang)) {
      it(programName(program), { timeout: 60_000 }, async () => {
        await check(program)
      })
    }
  })
}
