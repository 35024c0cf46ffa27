import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { generateSigningKeyPair, signPluginPackage, verifyPluginPackage } from '@corral/manager'
import { PluginError } from '@corral/types'
import { colors } from '../output.js'
import { resolvePluginFolder } from '../plugin-folder.js'

async function readKey(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8')
  } catch (cause) {
    throw new PluginError('not_found', `cannot read key ${file}: ${(cause as Error).message}`, { cause })
  }
}

/** `corral keygen --out <prefix>`: writes `<prefix>.key.pem` (private, mode 600) and `<prefix>.pub.pem`. */
export async function keygenCommand(prefix: string): Promise<void> {
  const { privateKeyPem, publicKeyPem } = generateSigningKeyPair()
  await writeFile(`${prefix}.key.pem`, privateKeyPem, { mode: 0o600, flag: 'wx' })
  await writeFile(`${prefix}.pub.pem`, publicKeyPem, { flag: 'wx' })
  process.stdout.write(
    `${colors.green('✓')} wrote ${prefix}.key.pem (keep it secret) and ${prefix}.pub.pem\n`,
  )
}

/** `corral sign [dir] --key key.pem`: signs every file of the built plugin folder into `plugin.sig`. */
export async function signCommand(dir: string, keyFile: string): Promise<void> {
  const folder = await resolvePluginFolder(dir)
  await signPluginPackage(folder, await readKey(keyFile))
  process.stdout.write(`${colors.green('✓')} signed ${folder} (${path.join(folder, 'plugin.sig')})\n`)
}

/** `corral verify [dir] --trusted pub.pem…`: checks the folder against its `plugin.sig` and the trusted keys. */
export async function verifyCommand(dir: string, trustedFiles: string[]): Promise<void> {
  const folder = await resolvePluginFolder(dir)
  const keys = await Promise.all(trustedFiles.map(readKey))
  await verifyPluginPackage(folder, keys)
  process.stdout.write(`${colors.green('✓')} ${folder}: signature valid, by a trusted key\n`)
}
