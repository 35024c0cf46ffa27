import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'

/**
 * The embedding example of the READMEs, run as written: taken from the README text (the block after
 * the `embedding-example` marker), its types stripped, its import pointed at this package's build,
 * run by Node in a folder holding the hello-wasm example plugin. A broken example fails here.
 */

const packageDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const repoDir = path.resolve(packageDir, '../..')
const run = promisify(execFile)

function embeddingExample(readme: string): string {
  const text = readFileSync(readme, 'utf8')
  const block = /<!-- embedding-example[^>]*-->\n```ts\n([\s\S]*?)```/.exec(text)?.[1]
  if (block === undefined) throw new Error(`${readme} has no embedding example`)
  return block
}

describe('the README embedding example (real WASM plugin, real SQLite file)', () => {
  const example = embeddingExample(path.join(packageDir, 'README.md'))

  it('is the same in the root README and the package README', () => {
    expect(embeddingExample(path.join(repoDir, 'README.md'))).toBe(example)
  })

  it('runs as written and prints what the README says', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'corral-readme-'))
    try {
      await mkdir(path.join(dir, 'plugins'))
      await symlink(path.join(repoDir, 'examples/plugins/hello-wasm'), path.join(dir, 'plugins/hello-wasm'))
      const manager = pathToFileURL(path.join(packageDir, 'dist/index.js')).href
      const js = ts.transpileModule(example, {
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      }).outputText
      expect(js).toContain("from '@corral/manager'")
      await writeFile(path.join(dir, 'example.mjs'), js.replace("'@corral/manager'", JSON.stringify(manager)))
      const { stdout } = await run(process.execPath, ['example.mjs'], { cwd: dir, timeout: 60_000 })
      expect(stdout).toContain('hello-wasm: discovered → loading')
      expect(stdout).toContain('hello-wasm: loading → running')
      expect(stdout).toContain('Hello, Ada!')
      expect(stdout).toContain('hello-wasm running 1 calls')
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }, 90_000)
})
