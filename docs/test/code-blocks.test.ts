import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import {
  checkAssemblyScript,
  checkC,
  checkGo,
  checkJavaScript,
  checkJson,
  checkShell,
  checkYaml,
} from './check-programs.js'
import { checkTypeScript, type TypeScriptResults } from './check-typescript.js'
import { extractCodeBlocks, listMarkdownFiles, readMarkdown, repoRoot } from './markdown.js'
import { type LoadedBlockPlugins, loadBlockPlugins, typescriptPluginProgram } from './plugin-blocks.js'
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
/** The blocks checked by their language alone: not those that are parts of a plugin (`plugin`). */
const ofLanguage = (lang: string) => programs.filter((p) => p.lang === lang && !p.attributes.has('plugin'))
/** The blocks of a program's Markdown file saved as files (`file=<name>`). */
const filesOf = (program: Program) =>
  programs.filter((p) => p.file === program.file && p.attributes.has('file'))
/** Those a TypeScript program runs beside: not TypeScript, which it imports compiled. */
const filesBeside = (program: Program) => filesOf(program).filter((p) => p.lang !== 'ts')

/** Per Markdown file with `plugin` blocks: its blocks, and its TypeScript plugin's generated source. */
const pluginFiles = [...new Set(programs.filter((p) => p.attributes.has('plugin')).map((p) => p.file))].map(
  (file) => {
    const blocks = programs.filter((p) => p.file === file && p.attributes.has('plugin'))
    const typescriptBlocks = blocks.filter((p) => p.lang === 'ts')
    return {
      file,
      blocks,
      manifest: blocks.find((p) => p.lang === 'yaml'),
      typescriptBlocks,
      assemblyScriptBlocks: blocks.filter((p) => p.lang === 'assemblyscript'),
      typescript: typescriptPluginProgram(typescriptBlocks),
    }
  },
)

let results: Promise<TypeScriptResults> | undefined
/** One tsc run for every TypeScript block and every plugin made of blocks. */
const typescript = () => {
  const generated = pluginFiles.flatMap((f) => (f.typescript === undefined ? [] : [f.typescript]))
  results ??= checkTypeScript([...ofLanguage('ts'), ...generated], path.join(workDir, 'ts'))
  return results
}

it('every block continues a block before it, when it says so', () => {
  expect(groupingErrors).toEqual([])
})

it('every block names its language (text for output)', () => {
  const checked = new Set(['ts', 'assemblyscript', 'yaml', 'json', 'js', 'sh', 'c', 'go'])
  const unknown = programs
    .filter((p) => !checked.has(p.lang) && !outputLanguages.has(p.lang))
    .map((p) => `${programName(p)}: ${p.lang === '' ? 'no language' : `no check for ${p.lang}`}`)
  expect(unknown).toEqual([])
})

describe('TypeScript blocks type-check against the workspace packages (and run, when they say run)', () => {
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
  ['js', 'JavaScript blocks pass node --check', checkJavaScript],
  [
    'sh',
    'shell blocks pass bash -n (and run in a temp folder, when they say run)',
    (p) => checkShell(p, filesOf(p)),
  ],
  ['c', 'C blocks compile for wasm32-wasi against the C SDK', checkC],
  ['go', 'Go blocks compile against the Go SDK', checkGo],
]
// Each block in a folder of its own: they run side by side (a `corral` session waits on processes).
for (const [lang, title, check] of checks) {
  describe.concurrent(title, () => {
    for (const program of ofLanguage(lang)) {
      it(programName(program), { timeout: 660_000 }, async () => {
        await check(program)
      })
    }
  })
}

for (const {
  file,
  blocks,
  manifest,
  typescript: plugin,
  typescriptBlocks,
  assemblyScriptBlocks,
} of pluginFiles) {
  describe(`${file}: plugin blocks run inside real plugins under a real host`, () => {
    let loaded: Promise<LoadedBlockPlugins> | undefined
    const plugins = () => {
      if (manifest === undefined)
        throw new Error(`${file} has plugin blocks and no \`yaml manifest plugin\` block`)
      loaded ??= loadBlockPlugins(
        manifest,
        plugin,
        typescriptBlocks,
        assemblyScriptBlocks,
        path.join(workDir, 'plugins'),
      )
      return loaded
    }
    afterAll(async () => {
      await (await loaded)?.close()
    })
    for (const block of blocks.filter((b) => b !== manifest)) {
      it(programName(block), { timeout: 240_000 }, async () => {
        if (plugin !== undefined && block.lang === 'ts') {
          // The generated lines around the blocks map to the first block's fence.
          const wrapper = block === typescriptBlocks[0] ? [block.line] : []
          const lines = new Set([...wrapper, ...block.sourceLines].map((line) => `${file}:${line}:`))
          const errors = (await typescript()).errors.get(plugin) ?? []
          expect(errors.filter((error) => [...lines].some((line) => error.startsWith(line)))).toEqual([])
        }
        const { calls, run } = await plugins()
        const call = calls.find((c) => c.program === block)
        if (call === undefined) throw new Error(`${programName(block)} is not a function of a plugin`)
        await run(call)
      })
    }
  })
}
