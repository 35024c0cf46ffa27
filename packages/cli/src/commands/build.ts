import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { loadManifest } from '@corral/manifest'
import { isPluginError, PluginError } from '@corral/types'
import { bundleNodeEntry } from '../node-bundle.js'
import { withProgress } from '../output.js'
import { resolvePluginFolder } from '../plugin-folder.js'
import { sdkFile, sdkModulesDir } from '../toolchain.js'

/** Runs a shell command in the plugin's folder, its `node_modules/.bin` first on the PATH; output to stderr. */
function run(command: string, dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', command], {
      cwd: dir,
      stdio: ['ignore', 'inherit', 'inherit'],
      env: {
        ...process.env,
        PATH: `${path.join(dir, 'node_modules', '.bin')}${path.delimiter}${process.env.PATH}`,
      },
    })
    child.on('error', reject)
    child.on('exit', (code, signal) =>
      code === 0
        ? resolve()
        : reject(new PluginError('load_failed', `\`${command}\` failed (${signal ?? `exit code ${code}`})`)),
    )
  })
}

/** `text` as one word of a shell command. */
function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`
}

async function buildScript(dir: string): Promise<string | undefined> {
  const file = path.join(dir, 'package.json')
  if (!existsSync(file)) return undefined
  const pkg = JSON.parse(await readFile(file, 'utf8')) as { scripts?: Record<string, string> }
  return pkg.scripts?.build
}

/** asc's flags for a quick build: none of Binaryen's optimisation passes, a third of the CPU time. */
const unoptimized = ['--optimizeLevel', '0', '--shrinkLevel', '0']

async function compileAssemblyScript(dir: string, quick: boolean): Promise<void> {
  // Loaded here, not with the CLI: AssemblyScript brings Binaryen, seconds of start-up under load
  // that every other command and template would pay.
  const { main: asc } = await import('assemblyscript/asc')
  const flags = quick ? unoptimized : []
  const { error, stderr } = await asc(['--baseDir', dir, '--path', sdkModulesDir(), ...flags])
  if (error !== null) {
    throw new PluginError('load_failed', `asc failed: ${error.message}\n${stderr.toString()}`)
  }
}

/** One way to build a plugin folder, and what it is called in the progress line. */
interface BuildStep {
  what: string
  run: () => Promise<void>
}

/**
 * How a plugin folder is built: its `package.json` build script, or else the build its files name —
 * `asconfig.json` (AssemblyScript), `build.sh` (C, Go), a Go plugin's `main.go` (built with the Go
 * SDK into its `entry.binary`), a TypeScript gRPC plugin's `src/main.ts` (bundled with its
 * dependencies into its `entry.node`).
 */
async function buildStep(dir: string, quick: boolean): Promise<BuildStep | undefined> {
  const script = await buildScript(dir)
  if (script !== undefined) return { what: script, run: () => run(script, dir) }
  if (existsSync(path.join(dir, 'asconfig.json'))) {
    return {
      what: ['asc --config asconfig.json', ...(quick ? unoptimized : [])].join(' '),
      run: () => compileAssemblyScript(dir, quick),
    }
  }
  if (existsSync(path.join(dir, 'build.sh')))
    return { what: 'sh build.sh', run: () => run('sh build.sh', dir) }
  const { manifest } = await loadManifest(dir)
  if ('binary' in manifest.entry && existsSync(path.join(dir, 'main.go'))) {
    const output = manifest.entry.binary
    return {
      what: `go build → ${output}`,
      run: () => run(`sh ${shellQuote(sdkFile('go/build-plugin.sh'))} . ${shellQuote(output)}`, dir),
    }
  }
  const source = path.join(dir, 'src', 'main.ts')
  if ('node' in manifest.entry && existsSync(source)) {
    const outfile = path.join(dir, manifest.entry.node)
    return {
      what: `esbuild src/main.ts → ${manifest.entry.node}`,
      run: () => bundleNodeEntry(source, outfile),
    }
  }
  return undefined
}

/**
 * Runs a build step. Every build tool's failure is `load_failed`, a plugin that does not build being
 * one that cannot load: esbuild's too, which throws errors of its own.
 */
async function runStep(step: BuildStep): Promise<void> {
  try {
    await step.run()
  } catch (error) {
    if (isPluginError(error)) throw error
    throw new PluginError('load_failed', `${step.what} failed: ${(error as Error).message}`, { cause: error })
  }
}

/**
 * Builds the plugin in `folder`, with progress on stderr; false when it names nothing to build.
 * `quick` (for `corral dev`) skips the optimisation of an AssemblyScript build, the slow part of it.
 */
export async function buildPlugin(folder: string, quick = false): Promise<boolean> {
  const step = await buildStep(folder, quick)
  if (step === undefined) return false
  await withProgress(`building ${path.basename(folder)}: ${step.what}`, () => runStep(step))
  return true
}

/** `corral build [dir]`: builds the plugin, with progress on stderr. */
export async function buildCommand(dir: string): Promise<void> {
  const folder = await resolvePluginFolder(dir)
  if (!(await buildPlugin(folder))) {
    throw new PluginError(
      'not_found',
      `${folder}: nothing to build (no build script in package.json, no asconfig.json, build.sh, main.go or src/main.ts)`,
    )
  }
}
