import type { CodeBlock } from './markdown.js'

/**
 * A program: a code block, with the blocks after it (same file, same language) that say
 * `continues`. Its lines map back to the Markdown lines they came from.
 */
export interface Program {
  file: string
  line: number
  lang: string
  attributes: Map<string, string>
  code: string
  /** For each line of `code` (from 0), its line in the Markdown file. */
  sourceLines: number[]
}

/** Languages whose blocks are output or prose, shown and never run. */
export const outputLanguages = new Set(['text', 'console', 'output', 'md', 'markdown'])

/** The language a block is checked as: `ts assemblyscript` is AssemblyScript; aliases folded. */
export function checkedLanguage(block: Pick<CodeBlock, 'lang' | 'attributes'>): string {
  const aliases: Record<string, string> = {
    typescript: 'ts',
    yml: 'yaml',
    shell: 'sh',
    bash: 'sh',
    golang: 'go',
    javascript: 'js',
    mjs: 'js',
  }
  const lang = aliases[block.lang] ?? block.lang
  return lang === 'ts' && block.attributes.has('assemblyscript') ? 'assemblyscript' : lang
}

/** The programs of one Markdown file's blocks; a `continues` block with nothing before it is an error. */
export function groupPrograms(blocks: CodeBlock[]): Program[] {
  const programs: Program[] = []
  const lastByLanguage = new Map<string, Program>()
  for (const block of blocks) {
    const lang = checkedLanguage(block)
    const context = block.context
    const code = context === undefined ? block.code : `${context.code}\n${block.code}`
    const sourceLines = [
      ...(context?.code.split('\n').map((_, i) => context.line + i) ?? []),
      ...block.code.split('\n').map((_, i) => block.line + 1 + i),
    ]
    const previous = lastByLanguage.get(lang)
    if (block.attributes.has('continues')) {
      if (previous === undefined) {
        throw new Error(`${block.file}:${block.line}: a block that continues needs a ${lang} block before it`)
      }
      previous.code += `\n${code}`
      previous.sourceLines.push(...sourceLines)
      for (const [key, value] of block.attributes)
        if (key !== 'continues') previous.attributes.set(key, value)
      continue
    }
    const program: Program = {
      file: block.file,
      line: block.line,
      lang,
      attributes: new Map(block.attributes),
      code,
      sourceLines,
    }
    programs.push(program)
    lastByLanguage.set(lang, program)
  }
  return programs
}

/** `README.md:12` — where a program starts. */
export function programName(program: Pick<Program, 'file' | 'line'>): string {
  return `${program.file}:${program.line}`
}
