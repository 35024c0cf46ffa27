import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { repoRoot } from './markdown.js'
import type { Program } from './programs.js'

const examplePlugins = path.join(repoRoot, 'examples', 'plugins')

/**
 * Runs `use` in a new temporary folder, removed after, that holds what a host's folder would:
 * `plugins/` with every example plugin (built by the build; linked, not copied) and the `files`
 * (blocks saved under their `file=<name>`, such as a `policies.yaml`).
 */
export async function inRunFolder<T>(files: Program[], use: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'corral-docs-run-'))
  try {
    await mkdir(path.join(dir, 'plugins'))
    for (const plugin of await readdir(examplePlugins)) {
      await symlink(path.join(examplePlugins, plugin), path.join(dir, 'plugins', plugin))
    }
    await writeFiles(dir, files)
    return await use(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** Saves each block in `dir` under its `file=<name>`. */
export async function writeFiles(dir: string, files: Program[]): Promise<void> {
  for (const file of files) {
    const name = file.attributes.get('file')
    if (name !== undefined) await writeFile(path.join(dir, name), `${file.code}\n`)
  }
}
