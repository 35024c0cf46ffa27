import { existsSync } from 'node:fs'
import { copyFile, mkdir, readdir, readFile, realpath, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { pluginNamePattern, pluginNameRule } from '@corral/manifest'
import { PluginError } from '@corral/types'
import { colors } from '../output.js'
import { sdkFile } from '../toolchain.js'

/** The templates `corral new` knows, each a folder of `templates/` in this package. */
export const templateNames = ['wasm-as', 'grpc-ts', 'wasm-c', 'grpc-go', 'extism'] as const
export type TemplateName = (typeof templateNames)[number]

const templatesDir = fileURLToPath(new URL('../templates/', import.meta.url))
/**
 * Files of `@corral/plugin-sdk` a template's build needs in the plugin's folder (target ← SDK path):
 * C includes `corral.h` from the folder, so the plugin builds with clang alone, anywhere.
 */
const sdkFilesOf: Partial<Record<TemplateName, Record<string, string>>> = {
  'wasm-c': { 'include/corral.h': 'c/corral.h' },
}

/** The arguments of the first call `corral new` suggests: Extism functions take text. */
const exampleArgsOf: Partial<Record<TemplateName, string>> = { extism: '"Ada"' }

/** Written in every text file of a template where the plugin's name goes. */
const namePlaceholder = /__NAME__/g

/**
 * Written in a template where the folder of the Corral packages this CLI runs with goes: a new
 * plugin's `file:` dependencies on them (none is on npm), so that `npm install` links them and
 * `tsc`, an editor and `npm test` find them, and the JSON Schema its `plugin.yaml` names.
 */
const packagesPlaceholder = '__CORRAL_PACKAGES__'

/** The folder holding the CLI's own `@corral/plugin-sdk` and its siblings: a clone's `packages/`. */
async function corralPackagesDir(): Promise<string> {
  return path.dirname(await realpath(sdkFile('.')))
}

async function copyTemplate(from: string, to: string, name: string): Promise<string[]> {
  const written: string[] = []
  await mkdir(to, { recursive: true })
  for (const entry of await readdir(from, { withFileTypes: true })) {
    const source = path.join(from, entry.name)
    const target = path.join(to, entry.name)
    if (entry.isDirectory()) {
      written.push(...(await copyTemplate(source, target, name)))
    } else {
      let text = (await readFile(source, 'utf8')).replace(namePlaceholder, name)
      if (text.includes(packagesPlaceholder))
        text = text.replaceAll(packagesPlaceholder, await corralPackagesDir())
      await writeFile(target, text, {
        mode: entry.name.endsWith('.sh') ? 0o755 : 0o644,
      })
      written.push(target)
    }
  }
  return written
}

/**
 * `corral new <name> --template …`: a working plugin in `./<name>` — manifest, source, build, a
 * test — from the templates shipped in this package.
 */
export async function newCommand(name: string, template: string, parent = '.'): Promise<void> {
  if (!(templateNames as readonly string[]).includes(template)) {
    throw new PluginError(
      'invalid_argument',
      `unknown template ${template}; one of: ${templateNames.join(', ')}`,
    )
  }
  if (!pluginNamePattern.test(name)) {
    throw new PluginError('invalid_argument', `${name} is not a plugin name: a name ${pluginNameRule}`)
  }
  const dir = path.resolve(parent, name)
  if (existsSync(dir)) throw new PluginError('already_exists', `${dir} already exists`)
  await copyTemplate(path.join(templatesDir, template), dir, name)
  for (const [target, source] of Object.entries(sdkFilesOf[template as TemplateName] ?? {})) {
    await mkdir(path.dirname(path.join(dir, target)), { recursive: true })
    await copyFile(sdkFile(source), path.join(dir, target))
  }
  const args = exampleArgsOf[template as TemplateName] ?? '{"name":"Ada"}'
  process.stdout.write(
    `${colors.green('✓')} created ${dir} (${template})\n  next: corral build ${name} && corral call ${name} greet --args '${args}'\n`,
  )
}
