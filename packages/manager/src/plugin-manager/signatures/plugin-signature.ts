/**
 * Package signatures: an ed25519 signature over a digest of every file in a plugin folder, kept in
 * `<dir>/plugin.sig`. What is covered: every regular file and every symbolic link under the folder,
 * at any depth, build products (`node_modules`, `dist`, compiled `.wasm`) included — whatever is in
 * the folder when it is signed is what must be there when it is verified. A symbolic link counts
 * as the text of its target (it is not followed, so a link swapped for another target is a change);
 * a file replaced by a link, or the reverse, is a change too. Directories count through what they
 * hold (an empty directory is not covered). Only the root's own `plugin.sig` is left out. Sockets,
 * FIFOs and devices are refused: a package has none.
 *
 * The digest is a SHA-256 over the sorted list of `[relative path, kind, SHA-256 of the content]`;
 * `plugin.sig` keeps that list too, so a refusal can name the file that changed.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto'
import { createReadStream } from 'node:fs'
import { lstat, readdir, readFile, readlink, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PluginError } from '@corral/types'

/** The signature file's name, at the root of the plugin folder. */
export const signatureFileName = 'plugin.sig'

/** One covered entry: its path relative to the folder (`/`-separated), its kind, and the SHA-256 (hex) of its content or link target. */
export type SignedEntry = [path: string, kind: 'file' | 'symlink', sha256: string]

/** How many changed files a refusal names (a rebuilt `node_modules` could change thousands). */
const maxChangesNamed = 20

/** What `plugin.sig` holds (JSON). */
export interface PluginSignatureFile {
  algorithm: 'ed25519'
  /** SHA-256 (hex) of the JSON text of `files`. */
  digest: string
  /** ed25519 signature (base64) of the digest's 32 bytes. */
  signature: string
  /** The signing key's id: see {@link signingKeyId}. */
  key_id: string
  /** Every covered entry, sorted by path. */
  files: SignedEntry[]
}

/**
 * A new ed25519 key pair: the public key as SPKI PEM (what `signatures.trustedKeys` takes), the
 * private key as PKCS#8 PEM (keep it secret).
 *
 * @example
 * const { publicKeyPem, privateKeyPem } = generateSigningKeyPair()
 */
export function generateSigningKeyPair(): { publicKeyPem: string; privateKeyPem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519')
  return {
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  }
}

/** A key's id: the first 16 bytes of the SHA-256 of its raw 32-byte public key, hex. */
export function signingKeyId(publicKey: KeyObject): string {
  const raw = Buffer.from(String(publicKey.export({ format: 'jwk' }).x), 'base64url')
  return createHash('sha256').update(raw).digest('hex').slice(0, 32)
}

/**
 * Signs the plugin folder `dir`: writes `<dir>/plugin.sig` over every file in it (see the module
 * comment for what is covered). Sign after the build, since build products are covered too.
 *
 * @example
 * await signPluginPackage('plugins/stats', await readFile('corral-signing.key', 'utf8'))
 */
export async function signPluginPackage(dir: string, privateKeyPem: string): Promise<void> {
  const privateKey = ed25519Key(() => createPrivateKey(privateKeyPem), 'the private key')
  const files = await listEntries(dir)
  const digest = digestOf(files)
  const content: PluginSignatureFile = {
    algorithm: 'ed25519',
    digest: digest.toString('hex'),
    signature: sign(null, digest, privateKey).toString('base64'),
    key_id: signingKeyId(createPublicKey(privateKey)),
    files,
  }
  // Written beside and renamed, so a reader never sees half a signature file.
  const target = join(dir, signatureFileName)
  await writeFile(`${target}.tmp`, `${JSON.stringify(content, null, 2)}\n`)
  await rename(`${target}.tmp`, target)
}

/**
 * Checks the signature of the plugin folder `dir` against `trustedKeys` (SPKI PEM, or base64 of the
 * raw 32-byte key). Rejects with `permission_denied` when the folder is unsigned, signed by a key
 * not trusted, or tampered with (naming every file changed, added or removed); with
 * `invalid_argument` when a trusted key is not an ed25519 key.
 *
 * @example
 * await verifyPluginPackage('plugins/stats', [publicKeyPem])
 */
export async function verifyPluginPackage(dir: string, trustedKeys: string[]): Promise<void> {
  const keys = new Map(
    trustedKeys.map((text) => {
      const key = parsePublicKey(text)
      return [signingKeyId(key), key] as const
    }),
  )
  const signed = await readSignatureFile(dir)
  const key = keys.get(signed.key_id)
  if (key === undefined) {
    throw refused(dir, `is signed by key ${signed.key_id}, which is not trusted`)
  }
  const digest = digestOf(signed.files)
  if (
    digest.toString('hex') !== signed.digest ||
    !verify(null, digest, key, Buffer.from(signed.signature, 'base64'))
  ) {
    throw refused(dir, `is tampered with: ${signatureFileName} does not match its signature`)
  }
  const changes = compareEntries(signed.files, await listEntries(dir))
  if (changes.length > 0) {
    const shown = changes.slice(0, maxChangesNamed).join('; ')
    const more = changes.length > maxChangesNamed ? `; and ${changes.length - maxChangesNamed} more` : ''
    throw refused(dir, `is tampered with: ${shown}${more}`)
  }
}

function refused(dir: string, what: string): PluginError {
  return new PluginError('permission_denied', `the plugin package ${dir} ${what}`)
}

async function readSignatureFile(dir: string): Promise<PluginSignatureFile> {
  let text: string
  try {
    text = await readFile(join(dir, signatureFileName), 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      throw refused(dir, `is unsigned (no ${signatureFileName})`)
    throw new PluginError(
      'unavailable',
      `cannot read ${join(dir, signatureFileName)}: ${(error as Error).message}`,
      { cause: error },
    )
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    parsed = undefined
  }
  if (!isSignatureFile(parsed)) throw refused(dir, `has a malformed ${signatureFileName}`)
  return parsed
}

function isSignatureFile(value: unknown): value is PluginSignatureFile {
  if (typeof value !== 'object' || value === null) return false
  const { algorithm, digest, signature, key_id, files } = value as Record<string, unknown>
  return (
    algorithm === 'ed25519' &&
    typeof digest === 'string' &&
    typeof signature === 'string' &&
    typeof key_id === 'string' &&
    Array.isArray(files) &&
    files.every(
      (entry) =>
        Array.isArray(entry) &&
        entry.length === 3 &&
        typeof entry[0] === 'string' &&
        (entry[1] === 'file' || entry[1] === 'symlink') &&
        typeof entry[2] === 'string',
    )
  )
}

function parsePublicKey(text: string): KeyObject {
  const trimmed = text.trim()
  return ed25519Key(
    () =>
      trimmed.startsWith('-----BEGIN')
        ? createPublicKey(trimmed)
        : createPublicKey({
            key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(trimmed, 'base64').toString('base64url') },
            format: 'jwk',
          }),
    'a trusted key',
  )
}

function ed25519Key(make: () => KeyObject, what: string): KeyObject {
  let key: KeyObject
  try {
    key = make()
  } catch (error) {
    throw new PluginError('invalid_argument', `${what} is not a valid key: ${(error as Error).message}`, {
      cause: error,
    })
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new PluginError('invalid_argument', `${what} is a ${key.asymmetricKeyType} key, not ed25519`)
  }
  return key
}

function digestOf(files: readonly SignedEntry[]): Buffer {
  return createHash('sha256').update(JSON.stringify(files)).digest()
}

/** Every covered entry under `dir`, sorted by path (UTF-16 code unit order, the same on every platform). */
async function listEntries(dir: string): Promise<SignedEntry[]> {
  const entries: SignedEntry[] = []
  const walk = async (relative: string): Promise<void> => {
    for (const name of await readdir(join(dir, relative))) {
      const path = relative === '' ? name : `${relative}/${name}`
      if (path === signatureFileName) continue
      const full = join(dir, path)
      const stats = await lstat(full)
      if (stats.isDirectory()) await walk(path)
      else if (stats.isSymbolicLink()) entries.push([path, 'symlink', sha256(await readlink(full))])
      else if (stats.isFile()) entries.push([path, 'file', await sha256OfFile(full)])
      else
        throw new PluginError(
          'invalid_argument',
          `${full} is neither a file, a directory nor a symbolic link`,
        )
    }
  }
  await walk('')
  return entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex')
}

async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

/** What differs between the signed entries and the folder's, one phrase per file. */
function compareEntries(signed: readonly SignedEntry[], actual: readonly SignedEntry[]): string[] {
  const was = new Map(signed.map(([path, kind, hash]) => [path, `${kind}:${hash}`]))
  const is = new Map(actual.map(([path, kind, hash]) => [path, `${kind}:${hash}`]))
  const changes: string[] = []
  for (const [path, entry] of is) {
    const before = was.get(path)
    if (before === undefined) changes.push(`${path} was added`)
    else if (before !== entry) changes.push(`${path} was changed`)
  }
  for (const path of was.keys()) if (!is.has(path)) changes.push(`${path} was removed`)
  return changes
}
