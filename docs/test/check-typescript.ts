import { execFile } from 'node:child_process'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import path from 'node:path'
import { promisify } from 'node:util'
import { repoRoot } from './markdown.js'
import type { Program } from './programs.js'
import { inRunFolder } from './run-folder.js'

const run = promisify(execFile)
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')

/** Where a program's source goes: one folder per Markdown file, so its blocks can import each other. */
function sourcePath(program: Program): string {
  const folder = program.file.replace(/\.md$/, '').replace(/[^A-Za-z0-9_-]+/g, '_')
  const name = program.attributes.get('file') ?? `block-${program.line}.ts`
  return path.join(folder, name)
}

/** tsc's `file(line,col): error TS…: message` lines, with the indented lines that continue them. */
function parseDiagnostics(output: string): { file: string; line: number; message: string }[] {
  const diagnostics: { file: string; line: number; message: string }[] = []
  for (const text of output.split('\n')) {
    const match = /^(.+?)\((\d+),\d+\): (error TS\d+: .*)$/.exec(text)
    const last = diagnostics.at(-1)
    if (match !== null)
      diagnostics.push({ file: match[1] ?? '', line: Number(match[2]), message: match[3] ?? '' })
    else if (text.startsWith(' ') && last !== undefined) last.message += `\n${text}`
    else if (text.trim() !== '') diagnostics.push({ file: '', line: 0, message: text })
  }
  return diagnostics
}

export interface TypeScriptResults {
  /** Each program's type errors, at their Markdown lines. */
  errors: Map<Program, string[]>
  /** Errors that belong to no program (the compiler's own). */
  unplaced: string[]
  /**
   * Runs a `run` program's compiled JavaScript with Node in a run folder holding `files`; rejects
   * with its output when it fails.
   */
  execute(program: Program, files: Program[]): Promise<void>
}

/**
 * Type-checks every program at once against the workspace's packages (one tsc run: fast) and emits
 * JavaScript beside, for the programs to run. Each program is a module (top-level await works).
 */
export async function checkTypeScript(programs: Program[], workDir: string): Promise<TypeScriptResults> {
  await rm(workDir, { recursive: true, force: true })
  const byPath = new Map<string, Program>()
  for (const program of programs) {
    const file = sourcePath(program)
    if (byPath.has(file)) throw new Error(`${program.file}:${program.line}: two blocks are saved as ${file}`)
    byPath.set(file, program)
    await mkdir(path.join(workDir, 'src', path.dirname(file)), { recursive: true })
    await writeFile(path.join(workDir, 'src', file), `${program.code}\nexport {}\n`)
  }
  const tsconfig = {
    extends: path.relative(workDir, path.join(repoRoot, 'tsconfig.base.json')),
    compilerOptions: {
      types: ['node'],
      noEmit: false,
      outDir: 'out',
      // The repository's root: a block's hidden context may import a package's internals by path.
      rootDir: path.relative(workDir, repoRoot),
      declaration: false,
      sourceMap: false,
    },
    include: ['src'],
  }
  await writeFile(path.join(workDir, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2))
  const output = await run(process.execPath, [tsc, '-p', workDir, '--pretty', 'false'], {
    cwd: workDir,
  }).then(
    (r) => r.stdout,
    (error: { stdout?: string; message: string }) => error.stdout ?? error.message,
  )
  const errors = new Map<Program, string[]>(programs.map((p) => [p, []]))
  const unplaced: string[] = []
  for (const diagnostic of parseDiagnostics(output)) {
    const program = byPath.get(path.relative('src', diagnostic.file))
    if (program === undefined) {
      unplaced.push(`${diagnostic.file}(${diagnostic.line}): ${diagnostic.message}`)
      continue
    }
    const line = program.sourceLines[diagnostic.line - 1] ?? program.line
    errors.get(program)?.push(`${program.file}:${line}: ${diagnostic.message}`)
  }
  return {
    errors,
    unplaced,
    async execute(program, files) {
      const source = path.relative(repoRoot, path.join(workDir, 'src', sourcePath(program)))
      const js = path.join(workDir, 'out', source.replace(/\.ts$/, '.js'))
      await inRunFolder(files, async (cwd) => {
        await run(process.execPath, [js], { cwd, timeout: 60_000 }).catch(
          (error: { stderr?: string; message: string }) => {
            throw new Error(
              `${program.file}:${program.line} failed when run:\n${error.stderr || error.message}`,
            )
          },
        )
      })
    },
  }
}
