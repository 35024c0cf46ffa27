import { spawn } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { corralHandshake, generateCertificate } from '@corral/proto'
import { describe, expect, it } from 'vitest'

const script = join(dirname(fileURLToPath(import.meta.url)), 'testing/echo-plugin.mjs')
const cookie = {
  [corralHandshake.magicCookieKey]: corralHandshake.magicCookieValue,
  PLUGIN_PROTOCOL_VERSIONS: '1',
}

/** Runs the echo plugin; resolves with its first stdout line (or its exit) and the process. */
function run(env: Record<string, string>) {
  const child = spawn(process.execPath, [script], { env, stdio: ['pipe', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  const firstLine = new Promise<string>((resolve) => {
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString()
      if (stdout.includes('\n')) resolve(stdout.slice(0, stdout.indexOf('\n')))
    })
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  return { child, firstLine, exited, stderr: () => stderr }
}

describe('serve', () => {
  it('run by hand (no magic cookie): exits 1 with go-plugin’s message', async () => {
    const plugin = run({})
    expect(await plugin.exited).toBe(1)
    expect(plugin.stderr()).toContain('This binary is a plugin. These are not meant to be executed directly.')
  })

  it('prints the handshake line, and exits when the host goes away (stdin closes)', async () => {
    const plugin = run(cookie)
    expect(await plugin.firstLine).toMatch(/^1\|1\|unix\|\/.+\.sock\|grpc\|$/)
    plugin.child.stdin.end()
    expect(await plugin.exited).toBe(0)
  })

  it('with PLUGIN_CLIENT_CERT: sends its certificate, base64 without padding', async () => {
    const { certPem } = await generateCertificate()
    const plugin = run({ ...cookie, PLUGIN_CLIENT_CERT: certPem, CORRAL_PLUGIN_NETWORK: 'tcp' })
    const line = await plugin.firstLine
    const [, , network, address, , cert = ''] = line.split('|')
    expect(network).toBe('tcp')
    expect(address).toMatch(/^127\.0\.0\.1:\d+$/)
    expect(cert).not.toMatch(/=$/)
    expect(new X509Certificate(Buffer.from(cert, 'base64')).subject).toContain('CN=localhost')
    plugin.child.kill('SIGKILL')
    await plugin.exited
  })
})
