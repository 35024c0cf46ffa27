import { createPublicKey } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, symlink, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  generateSigningKeyPair,
  type PluginSignatureFile,
  signatureFileName,
  signPluginPackage,
  verifyPluginPackage,
} from './plugin-signature.js'

const keys = generateSigningKeyPair()
const trusted = [keys.publicKeyPem]

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'corral-sig-'))
  await writeFile(join(dir, 'plugin.yaml'), 'name: stats\nversion: 1.0.0\n')
  await mkdir(join(dir, 'dist/lib'), { recursive: true })
  await writeFile(join(dir, 'dist/lib/main.js'), 'export const answer = 42\n')
  await writeFile(join(dir, 'dist/plugin.wasm'), Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]))
  await symlink('lib/main.js', join(dir, 'dist/entry.js'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

function refusedWith(text: string | RegExp) {
  return expect.objectContaining({ code: 'permission_denied', message: expect.stringMatching(text) })
}

describe('signPluginPackage / verifyPluginPackage', () => {
  it('verifies a package it signed, with the key as PEM or as base64 of the raw key', async () => {
    await signPluginPackage(dir, keys.privateKeyPem)
    const sig = JSON.parse(await readFile(join(dir, signatureFileName), 'utf8')) as PluginSignatureFile
    expect(sig.algorithm).toBe('ed25519')
    expect(sig.files.map(([path, kind]) => `${path} ${kind}`)).toEqual([
      'dist/entry.js symlink',
      'dist/lib/main.js file',
      'dist/plugin.wasm file',
      'plugin.yaml file',
    ])
    await expect(verifyPluginPackage(dir, trusted)).resolves.toBeUndefined()
    const raw = Buffer.from(
      String(createPublicKey(keys.publicKeyPem).export({ format: 'jwk' }).x),
      'base64url',
    )
    await expect(verifyPluginPackage(dir, [raw.toString('base64')])).resolves.toBeUndefined()
  })

  it.each([
    ['plugin.yaml', 0],
    ['dist/lib/main.js', 7],
    ['dist/plugin.wasm', 3],
  ])('refuses a package with one byte of %s changed, naming the file', async (file, offset) => {
    await signPluginPackage(dir, keys.privateKeyPem)
    const bytes = await readFile(join(dir, file))
    bytes[offset] = (bytes[offset] ?? 0) ^ 1
    await writeFile(join(dir, file), bytes)
    await expect(verifyPluginPackage(dir, trusted)).rejects.toEqual(
      refusedWith(`tampered with: ${file} was changed$`),
    )
  })

  it('refuses a package with a file added, or removed', async () => {
    await signPluginPackage(dir, keys.privateKeyPem)
    await writeFile(join(dir, 'dist/lib/extra.js'), '')
    await expect(verifyPluginPackage(dir, trusted)).rejects.toEqual(
      refusedWith('dist/lib/extra.js was added$'),
    )
    await unlink(join(dir, 'dist/lib/extra.js'))
    await unlink(join(dir, 'plugin.yaml'))
    await expect(verifyPluginPackage(dir, trusted)).rejects.toEqual(refusedWith('plugin.yaml was removed$'))
  })

  it('refuses a package whose symlink was swapped for another target, or for the file it pointed to', async () => {
    await signPluginPackage(dir, keys.privateKeyPem)
    await unlink(join(dir, 'dist/entry.js'))
    await symlink('/etc/passwd', join(dir, 'dist/entry.js'))
    await expect(verifyPluginPackage(dir, trusted)).rejects.toEqual(refusedWith('dist/entry.js was changed$'))
    await unlink(join(dir, 'dist/entry.js'))
    await writeFile(join(dir, 'dist/entry.js'), await readFile(join(dir, 'dist/lib/main.js')))
    await expect(verifyPluginPackage(dir, trusted)).rejects.toEqual(refusedWith('dist/entry.js was changed$'))
  })

  it('refuses an unsigned package', async () => {
    await expect(verifyPluginPackage(dir, trusted)).rejects.toEqual(refusedWith('is unsigned'))
  })

  it('refuses a package signed by a key that is not trusted', async () => {
    await signPluginPackage(dir, generateSigningKeyPair().privateKeyPem)
    await expect(verifyPluginPackage(dir, trusted)).rejects.toEqual(refusedWith('which is not trusted'))
    await expect(verifyPluginPackage(dir, [])).rejects.toEqual(refusedWith('which is not trusted'))
  })

  it('refuses a package whose plugin.sig lists the tampered file with its new hash (the signature no longer matches)', async () => {
    await signPluginPackage(dir, keys.privateKeyPem)
    await writeFile(join(dir, 'plugin.yaml'), 'name: evil\n')
    // Re-sign with another key, then put the trusted key's id back: the signature cannot match.
    const genuine = JSON.parse(await readFile(join(dir, signatureFileName), 'utf8')) as PluginSignatureFile
    await signPluginPackage(dir, generateSigningKeyPair().privateKeyPem)
    const forged = JSON.parse(await readFile(join(dir, signatureFileName), 'utf8')) as PluginSignatureFile
    await writeFile(join(dir, signatureFileName), JSON.stringify({ ...forged, key_id: genuine.key_id }))
    await expect(verifyPluginPackage(dir, trusted)).rejects.toEqual(
      refusedWith('does not match its signature'),
    )
    // The genuine signature with a rewritten file list: the digest no longer matches the list.
    const newHash = forged.files.find(([path]) => path === 'plugin.yaml')?.[2]
    const rewritten = genuine.files.map(([path, kind, hash]) => [
      path,
      kind,
      path === 'plugin.yaml' ? newHash : hash,
    ])
    expect(rewritten).not.toEqual(genuine.files)
    await writeFile(join(dir, signatureFileName), JSON.stringify({ ...genuine, files: rewritten }))
    await expect(verifyPluginPackage(dir, trusted)).rejects.toEqual(
      refusedWith('does not match its signature'),
    )
  })

  it('refuses a malformed plugin.sig', async () => {
    await writeFile(join(dir, signatureFileName), '{"algorithm":"rsa"}')
    await expect(verifyPluginPackage(dir, trusted)).rejects.toEqual(refusedWith('malformed plugin.sig'))
  })

  it('says a trusted key or a signing key that is not ed25519 is invalid', async () => {
    await expect(verifyPluginPackage(dir, ['not a key'])).rejects.toMatchObject({ code: 'invalid_argument' })
    await expect(signPluginPackage(dir, 'not a key')).rejects.toMatchObject({ code: 'invalid_argument' })
  })
})
