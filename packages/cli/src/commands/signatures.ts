import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { generateSigningKeyPair, signPluginPackage, verifyPluginPackage } from '@corral/manager'
import { PluginError } from '@corral/types'
import { colors } from '../output.js'
import { checkOutputFile } from '../output-file.js'
import { resolvePluginFolder } from '../plugin-folder.js'
import { refuseUnsignableFiles } from '../unsignable-files.js'

/** Reads a key file: `not_found` naming it and why, never a raw fs error. */
export async function readKey(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8')
  } catch (cause) {
    throw new PluginError('not_found', `cannot read key ${file}: ${(cause as Error).message}`, { cause })
  }
}

/**
 * `corral keygen --out <prefix>`: writes `<prefix>.key.pem` (private, mode 600) and `<prefix>.pub.pem`;
 * it replaces neither, and writes neither when one is there already.
 */
export async function keygenCommand(prefix: string): Promise<void> {
  const privateFile = `${prefix}.key.pem`
  const publicFile = `${prefix}.pub.pem`
  for (const file of [privateFile, publicFile]) await checkOutputFile(path.resolve(file), { replace: false })
  const { privateKeyPem, publicKeyPem } = generateSigningKeyPair()
  await writeFile(privateFile, privateKeyPem, { mode: 0o600, flag: 'wx' })
  await writeFile(publicFile, publicKeyPem, { flag: 'wx' })
  process.stdout.write(`${colors.green('✓')} wrote ${privateFile} (keep it secret) and ${publicFile}\n`)
}

/**
 * `corral sign [dir] --key key.pem`: signs every file of the built plugin folder into `plugin.sig`,
 * refusing a folder that holds a private key or pack's archives (a signature covers every file).
 */
export async function signCommand(dir: string, keyFile: string): Promise<void> {
  const folder = await resolvePluginFolder(dir)
  const key = await readKey(keyFile)
  await refuseUnsignableFiles(folder, `signing ${folder}`)
  await signPluginPackage(folder, key)
  process.stdout.write(`${colors.green('✓')} signed ${folder} (${path.join(folder, 'plugin.sig')})\n`)
}

/** `corral verify [dir] --trusted pub.pem…`: checks the folder against its `plugin.sig` and the trusted keys. */
export async function verifyCommand(dir: string, trustedFiles: string[]): Promise<void> {
  const folder = await resolvePluginFolder(dir)
  const keys = await Promise.all(trustedFiles.map(readKey))
  await verifyPluginPackage(folder, keys)
  process.stdout.write(`${colors.green('✓')} ${folder}: signature valid, by a trusted key\n`)
}
