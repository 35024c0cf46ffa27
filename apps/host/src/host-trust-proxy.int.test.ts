import { afterEach, describe, expect, it } from 'vitest'
import { startTestHost, type TestHost } from './testing/test-host.js'

// The login rate limit keys by the client's address. Behind a proxy every request comes from the
// proxy: with CORRAL_TRUST_PROXY naming it, X-Forwarded-For tells the clients apart; without it, the
// header is the client's to forge, so it is ignored.
let host: TestHost | undefined
afterEach(async () => {
  delete process.env.CORRAL_TRUST_PROXY
  await host?.stop()
  host = undefined
})

/** The statuses of three failed sign-ins, then one more from another client, as the proxy sends them. */
async function failedSignIns(url: string): Promise<number[]> {
  const attempt = (client: string) =>
    fetch(`${url}/api/v1/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': client },
      body: JSON.stringify({ username: 'admin', password: 'not-the-password' }),
    }).then((res) => res.status)
  const codes: number[] = []
  for (let i = 0; i < 3; i++) codes.push(await attempt('203.0.113.7'))
  codes.push(await attempt('198.51.100.9'))
  return codes
}

describe('CORRAL_TRUST_PROXY', () => {
  it('with the proxy named, limits sign-ins per client of X-Forwarded-For', async () => {
    process.env.CORRAL_TRUST_PROXY = '127.0.0.1'
    host = await startTestHost({ plugins: [], approved: [], server: { loginsPerMinute: 2 } })
    // The third attempt of the first client is refused; the other client still gets its answer.
    expect(await failedSignIns(host.url)).toEqual([401, 401, 429, 401])
  })

  it('as a hop count, trusts that many proxies', async () => {
    process.env.CORRAL_TRUST_PROXY = '1'
    host = await startTestHost({ plugins: [], approved: [], server: { loginsPerMinute: 2 } })
    expect(await failedSignIns(host.url)).toEqual([401, 401, 429, 401])
  })

  it('unset, ignores X-Forwarded-For: every request is the socket’s address', async () => {
    host = await startTestHost({ plugins: [], approved: [], server: { loginsPerMinute: 2 } })
    expect(await failedSignIns(host.url)).toEqual([401, 401, 429, 429])
  })
})
