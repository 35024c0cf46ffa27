import type { Dirent } from 'node:fs'
import { readdir, readFile, stat } from 'node:fs/promises'
import path from 'node:path'
import { PluginError } from '@corral/types'

/** Folders searched for nothing: dependencies and version control, which hold no key of the author's. */
const unsearched = new Set(['node_modules', '.git'])
/** A PEM private key (PKCS#8, encrypted or not, or a traditional RSA, EC or OpenSSH one). */
const privateKeyPem = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/
/** Files larger than this are not read for a key: a PEM key is a few hundred bytes. */
const maxKeyFileBytes = 64 * 1024

async function isPrivateKey(file: string, entry: Dirent): Promise<boolean> {
  if (entry.name.endsWith('.key.pem')) return true
  if ((await stat(file)).size > maxKeyFileBytes) return false
  return privateKeyPem.test(await readFile(file, 'latin1'))
}

/**
 * What a plugin folder must not carry into a signature or a package, each with why: private keys
 * (the `<prefix>.key.pem` of `corral keygen`, any file holding a PEM private key) anywhere but in
 * `node_modules` and `.git`, and at its top the archives `corral pack` writes (`.tgz`, `.tgz.sha256`).
 */
export async function findUnsignableFiles(folder: string): Promise<string[]> {
  const found: string[] = []
  const search = async (dir: string) => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name)
      const relative = path.relative(folder, file)
      if (entry.isDirectory()) {
        if (!unsearched.has(entry.name)) await search(file)
      } else if (!entry.isFile()) {
        // A link is signed as the text of its target, never its content.
      } else if (await isPrivateKey(file, entry)) {
        found.push(`${relative} (a private key)`)
      } else if (dir === folder && /\.tgz(\.sha256)?$/.test(entry.name)) {
        found.push(`${relative} (what corral pack writes)`)
      }
    }
  }
  await search(folder)
  return found.sort()
}

/**
 * Fails with `invalid_argument`, naming them, when plugin folder `folder` holds files of
 * {@link findUnsignableFiles}: a signature covers every file of a folder, so they cannot be left out
 * of one, only moved out of the folder. `searched` is where they are looked for when that is a copy
 * of (part of) `folder` rather than `folder` itself: what `corral pack` staged.
 */
export async function refuseUnsignableFiles(folder: string, doing: string, searched = folder): Promise<void> {
  const found = await findUnsignableFiles(searched)
  if (found.length === 0) return
  throw new PluginError(
    'invalid_argument',
    `${doing} would include ${found.join(', ')}: move ${found.length === 1 ? 'it' : 'them'} out of ${folder}`,
  )
}
