import { fstatSync } from 'node:fs'
import { type PeerSecrets, parsePeerSecretsLine, peerSecretsEnv } from '@corral/proto'

/** The most bytes read for the peer secrets line: two 43-character secrets and a space fit well. */
const peerSecretsLineMaxBytes = 1024

/**
 * The secrets the host hands over on stdin where it runs the plugin without TLS (it says so in
 * `CORRAL_PEER_SECRETS`); undefined where it does not. Without them the plugin exits 1.
 */
export async function readPeerSecrets(): Promise<PeerSecrets | undefined> {
  if (process.env[peerSecretsEnv] !== 'stdin') return undefined
  const secrets = parsePeerSecretsLine(await firstStdinLine(peerSecretsLineMaxBytes))
  if (secrets === undefined) {
    process.stderr.write('the host sent no peer secrets on stdin\n')
    process.exit(1)
  }
  return secrets
}

/** The first line of stdin (empty past `maxBytes`); the stream is left paused for {@link watchHost}. */
function firstStdinLine(maxBytes: number): Promise<string> {
  return new Promise((resolve) => {
    let buffered = ''
    const finish = (line: string) => {
      process.stdin.off('data', onData)
      process.stdin.off('end', onEnd)
      process.stdin.pause()
      resolve(line)
    }
    const onData = (chunk: string) => {
      buffered += chunk
      const newline = buffered.indexOf('\n')
      if (newline !== -1) finish(buffered.slice(0, newline))
      else if (buffered.length > maxBytes) finish('')
    }
    const onEnd = () => finish('')
    process.stdin.setEncoding('utf8')
    process.stdin.on('data', onData)
    process.stdin.on('end', onEnd)
  })
}

/**
 * The host keeps the plugin's stdin open for as long as it lives: its end means the host is gone
 * (even killed outright), and the plugin must not outlive it. A terminal or a file on stdin (run
 * by hand) is not a host.
 */
export function watchHost(onGone: () => void): void {
  let stat: ReturnType<typeof fstatSync>
  try {
    stat = fstatSync(0)
  } catch {
    return
  }
  if (process.stdin.isTTY || !(stat.isFIFO() || stat.isSocket())) return
  process.stdin.on('end', onGone)
  process.stdin.on('error', onGone)
  process.stdin.resume()
}
