import { copyFile, mkdir, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { requestedPolicy } from '@corral/cli'
import { createBackends, createPluginManager, type PluginManager } from '@corral/manager'
import { loadManifest, parsePolicy } from '@corral/manifest'
import { isPluginError } from '@corral/types'
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml'
import { runCommand } from './check-programs.js'
import { repoRoot } from './markdown.js'
import type { Program } from './programs.js'

/**
 * `ts plugin` and `ts assemblyscript plugin` blocks: examples of what a plugin does, run inside a
 * real plugin under a real host. The `ts plugin` blocks of a Markdown file become the functions of
 * one gRPC TypeScript plugin (each block the body of a function with `host` in scope),
 * its `ts assemblyscript plugin` blocks one AssemblyScript module (each block exports one function
 * through `handle`). Both get the file's `yaml manifest plugin` block as their plugin.yaml (name,
 * runtime and entry set here), are built by `corral build`, and are loaded beside the example
 * plugin `hello-wasm` under the policies that grant what they request.
 */

/** One function of a plugin built from blocks: the block it came from and how it is called. */
export interface PluginCall {
  program: Program
  plugin: string
  fn: string
  /** The block's `args=<JSON>`; `{}` when it names none. */
  args: unknown
  /** The block's `fails=<code>`: the call must fail with that code (a plugin's own without its prefix). */
  fails?: string
  /** The result a block shows in a `// {…}` comment, when that comment is JSON. */
  shown?: unknown
}

/** The TypeScript plugin's source: each block the body of one function, mapped back to its lines. */
export function typescriptPluginProgram(blocks: Program[]): Program | undefined {
  const [first] = blocks
  if (first === undefined) return undefined
  const code = [
    "import { definePlugin } from '@corral/plugin-sdk'",
    'export default definePlugin({',
    '  functions: {',
  ]
  const sourceLines = [first.line, first.line, first.line]
  for (const block of blocks) {
    code.push(`    ${functionName(block)}: async (_args, { host }) => {`, ...block.code.split('\n'), '    },')
    sourceLines.push(block.line, ...block.sourceLines, block.line)
  }
  code.push('  },', '})')
  sourceLines.push(first.line, first.line)
  return {
    file: first.file,
    line: first.line,
    lang: 'ts',
    attributes: new Map([['file', 'plugin-blocks.ts']]),
    code: code.join('\n'),
    sourceLines,
  }
}

const functionName = (block: Program) => `line${block.line}`

/** The name of the function an AssemblyScript block exports. */
function exportedFunction(block: Program): string {
  const name = /export function (\w+)\(/.exec(block.code)?.[1]
  if (name === undefined) throw new Error(`${block.file}:${block.line}: the block exports no function`)
  return name
}

/** A `// {…}` comment that is JSON: the result the block shows (`"..."` stands for any value). */
function shownResult(block: Program): unknown {
  for (const match of block.code.matchAll(/\/\/ (\{.*\})\s*$/gm)) {
    try {
      return JSON.parse(match[1] ?? '')
    } catch {
      // Not JSON (`{"rows": [...]}`): shown for the reader, not checked.
    }
  }
  return undefined
}

function call(block: Program, plugin: string, fn: string): PluginCall {
  const args = block.attributes.get('args')
  const fails = block.attributes.get('fails')
  return {
    program: block,
    plugin,
    fn,
    args: args === undefined ? {} : JSON.parse(args),
    ...(fails === undefined ? {} : { fails }),
    shown: shownResult(block),
  }
}

/** Whether `actual` is what `shown` shows: the same JSON, `"..."` matching any value. */
export function matchesShown(actual: unknown, shown: unknown): boolean {
  if (shown === '...' || shown === undefined) return true
  if (typeof shown !== 'object' || shown === null) return actual === shown
  if (typeof actual !== 'object' || actual === null) return false
  return Object.entries(shown).every(([key, value]) =>
    matchesShown((actual as Record<string, unknown>)[key], value),
  )
}

/** The built plugins of one Markdown file's plugin blocks, loaded and ready for calls. */
export interface LoadedBlockPlugins {
  calls: PluginCall[]
  /** Calls one block's function; rejects when it does not do what the block says. */
  run(call: PluginCall): Promise<void>
  close(): Promise<void>
}

const cliBin = path.join(repoRoot, 'packages', 'cli', 'dist', 'bin.js')
const asconfig = path.join(repoRoot, 'packages', 'cli', 'templates', 'wasm-as', 'asconfig.json')
const helloWasm = path.join(repoRoot, 'examples', 'plugins', 'hello-wasm')

async function writePlugin(dir: string, manifest: Record<string, unknown>, files: Record<string, string>) {
  await rm(dir, { recursive: true, force: true })
  for (const [name, text] of Object.entries({ 'plugin.yaml': stringifyYaml(manifest), ...files })) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true })
    await writeFile(path.join(dir, name), text)
  }
}

/**
 * Builds the plugins of one Markdown file's blocks into `workDir` (with `corral build`, as an author
 * would) and loads them with the manager on embedded backends.
 */
export async function loadBlockPlugins(
  manifestBlock: Program,
  typescript: Program | undefined,
  typescriptBlocks: Program[],
  assemblyScriptBlocks: Program[],
  workDir: string,
): Promise<LoadedBlockPlugins> {
  const base = parseYaml(manifestBlock.code) as Record<string, unknown>
  const dirs: string[] = []
  const calls: PluginCall[] = []
  if (typescript !== undefined) {
    const name = `${base.name}-ts`
    const dir = path.join(workDir, name)
    await writePlugin(
      dir,
      { ...base, name, runtime: 'grpc', entry: { node: 'dist/main.js' } },
      {
        'src/plugin.ts': typescript.code,
        'src/main.ts':
          "import { serve } from '@corral/plugin-sdk'\nimport plugin from './plugin.js'\n\nawait serve(plugin)\n",
      },
    )
    dirs.push(dir)
    calls.push(...typescriptBlocks.map((block) => call(block, name, functionName(block))))
  }
  if (assemblyScriptBlocks.length > 0) {
    const name = `${base.name}-as`
    const dir = path.join(workDir, name)
    await writePlugin(
      dir,
      { ...base, name, runtime: 'wasm', entry: { wasm: 'build/plugin.wasm' } },
      { 'assembly/index.ts': assemblyScriptBlocks.map((block) => block.code).join('\n') },
    )
    await copyFile(asconfig, path.join(dir, 'asconfig.json'))
    dirs.push(dir)
    calls.push(...assemblyScriptBlocks.map((block) => call(block, name, exportedFunction(block))))
  }
  await Promise.all(
    dirs.map((dir) => runCommand(process.execPath, [cliBin, 'build', dir], { timeout: 120_000 })),
  )

  const manifests = await Promise.all(
    [...dirs, helloWasm].map(async (dir) => (await loadManifest(dir)).manifest),
  )
  const backends = await createBackends()
  const manager: PluginManager = createPluginManager({
    sources: [...dirs, helloWasm].map((dir) => ({ path: dir })),
    hostVersion: '1.0.0',
    backends,
    policies: manifests.map((manifest) => parsePolicy(requestedPolicy(manifest))),
    jobs: false,
  })
  try {
    await manager.start()
  } catch (error) {
    await backends.close()
    throw error
  }
  return {
    calls,
    async run({ program, plugin, fn, args, fails, shown }) {
      const where = `${program.file}:${program.line}`
      try {
        const result = await manager.call(plugin, fn, args)
        if (fails !== undefined)
          throw new Error(`${where}: succeeded, but the block says it fails with ${fails}`)
        if (!matchesShown(result, shown))
          throw new Error(
            `${where}: returned ${JSON.stringify(result)}, the block shows ${JSON.stringify(shown)}`,
          )
      } catch (error) {
        if (!isPluginError(error)) throw error
        const failedAsSaid = fails !== undefined && (error.code === fails || error.code.endsWith(`:${fails}`))
        if (!failedAsSaid) throw new Error(`${where}: ${plugin}.${fn} failed: ${error.message}`)
      }
    },
    async close() {
      await manager.close()
      await backends.close()
    },
  }
}
