import { createHash } from 'node:crypto'
import { createReadStream, existsSync } from 'node:fs'
import { cp, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { signPluginPackage } from '@corral/manager'
import { loadManifest } from '@corral/manifest'
import type { Manifest } from '@corral/types'
import { PluginError } from '@corral/types'
import { create as createTar } from 'tar'
import { bundleNodeEntry } from '../node-bundle.js'
import { colors, withProgress } from '../output.js'
import { checkOutputFile } from '../output-file.js'
import { resolvePluginFolder } from '../plugin-folder.js'
import { refuseUnsignableFiles } from '../unsignable-files.js'
import { readKey } from './signatures.js'

/** Options of `corral pack`. */
export interface PackOptions {
  /** The archive to write, or a folder to write it into; default `<name>-<version>.tgz` in the current folder. */
  out?: string
  /** Sign the packed folder with this private key (PEM file) before archiving it. */
  key?: string
}

/** Files beside the manifest that travel with a plugin when they exist. */
const companions = ['README.md', 'LICENSE']

async function sha256(file: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(file)) hash.update(chunk)
  return hash.digest('hex')
}

/**
 * Puts into `to` what the plugin needs to run: its manifest, its entry — a Node.js entry bundled
 * with every dependency into one file — and the folders its `fs` permissions name.
 */
async function stage(manifest: Manifest, dir: string, to: string): Promise<void> {
  const copy = async (relative: string) => {
    const source = path.join(dir, relative)
    if (!existsSync(source)) return false
    await cp(source, path.join(to, relative), { recursive: true, verbatimSymlinks: true })
    return true
  }
  await copy('plugin.yaml')
  for (const file of companions) await copy(file)
  const entry = manifest.entry
  if ('node' in entry) {
    const built = path.join(dir, entry.node)
    if (!existsSync(built))
      throw new PluginError('not_found', `${entry.node} is not built: run corral build first`)
    await bundleNodeEntry(built, path.join(to, entry.node))
  } else {
    const file = 'wasm' in entry ? entry.wasm : entry.binary
    if (!(await copy(file)))
      throw new PluginError('not_found', `${file} is not built: run corral build first`)
  }
  for (const permission of manifest.resources.permissions) {
    if (permission.type === 'fs') for (const folder of permission.scope) await copy(folder)
  }
}

/** The archive to write: `--out`, or `<name>-<version>.tgz` in the current folder or in the folder `--out` names. */
async function archivePath(manifest: Manifest, out: string | undefined): Promise<string> {
  const name = `${manifest.name}-${manifest.version}.tgz`
  if (out === undefined) return path.resolve(name)
  const given = path.resolve(out)
  const isFolder = await stat(given).then(
    (s) => s.isDirectory(),
    () => false,
  )
  return isFolder ? path.join(given, name) : given
}

/**
 * `corral pack [dir]`: one `.tgz` holding the plugin folder as it runs (`<name>/…`), optionally
 * signed, and its SHA-256 digest, printed and written beside it (`<archive>.sha256`, sha256sum's
 * format). The key and the archive's place are checked before anything is packed; what is staged
 * may hold no private key.
 */
export async function packCommand(dir: string, options: PackOptions): Promise<void> {
  const { manifest, dir: folder } = await loadManifest(await resolvePluginFolder(dir))
  const archive = await archivePath(manifest, options.out)
  await checkOutputFile(archive, { replace: true })
  await checkOutputFile(`${archive}.sha256`, { replace: true })
  const key = options.key === undefined ? undefined : await readKey(options.key)
  const work = await mkdtemp(path.join(tmpdir(), 'corral-pack-'))
  try {
    const staged = path.join(work, manifest.name)
    await mkdir(staged)
    await withProgress(`packing ${manifest.name} ${manifest.version}`, async () => {
      await stage(manifest, folder, staged)
      await refuseUnsignableFiles(folder, `packing ${manifest.name}`, staged)
      if (key !== undefined) await signPluginPackage(staged, key)
      await createTar({ gzip: true, file: archive, cwd: work, portable: true }, [manifest.name])
    })
  } finally {
    await rm(work, { recursive: true, force: true })
  }
  const digest = await sha256(archive)
  await writeFile(`${archive}.sha256`, `${digest}  ${path.basename(archive)}\n`)
  process.stdout.write(
    `${colors.green('✓')} ${archive}${options.key === undefined ? '' : ' (signed)'}\n  sha256 ${digest}\n`,
  )
}
