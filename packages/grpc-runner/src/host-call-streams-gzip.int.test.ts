// A hostile plugin that sends gzip-compressed host calls: each is some 2 KB on the wire and inflates
// to max_host_call_bytes. grpc-js would inflate every one as it arrives, before the host can count
// it. Its own file, so its own process: the resident set below is this test's alone.
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client, credentials, status } from '@grpc/grpc-js'
import { afterAll, describe, expect, it } from 'vitest'
import { GrpcBroker } from './grpc-broker.js'
import { serveHostService } from './host-service.js'
import { callInFlight, eventually, fixturesDir } from './testing/support.js'

const maxHostCallBytes = 2 << 20 // the default grant's max_host_call_bytes

describe('a plugin that sends gzip-compressed host calls, on several streams', () => {
  const dir = mkdtempSync(join(tmpdir(), 'corral-streams-gzip-'))
  const nowhere = new Client('unix:/nonexistent', credentials.createInsecure())
  const broker = new GrpcBroker(nowhere, { listen: { network: 'unix', socketDir: dir }, name: 'attacker' })
  let attacker: ChildProcess | undefined
  afterAll(() => {
    attacker?.kill('SIGKILL')
    broker.close()
    nowhere.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('has them refused uninflated: none reaches the host API, and the host neither grows nor spends its time on them', async () => {
    const { calls, token } = callInFlight({ maxHostCallBytes })
    let served = 0
    const at = await broker.serve(
      broker.nextId(),
      (server) =>
        serveHostService(server, 'attacker', calls, async () => {
          served += 1
          return null
        }),
      maxHostCallBytes + (16 << 10),
    )
    const rssMiB = () => process.memoryUsage().rss / (1 << 20)
    const before = rssMiB()
    let most = before
    const watch = setInterval(() => {
      most = Math.max(most, rssMiB())
    }, 20)
    const cpuBefore = process.cpuUsage()
    const streams = 8
    // Measured before the host refused compressed messages (with streams bounded per plugin): 525
    // MiB more and 3.2 s of CPU for 8 streams; 1 GiB for one stream of 256 slow calls.
    attacker = spawn(
      process.execPath,
      [
        join(fixturesDir, 'host-streams-gzip.mjs'),
        at.address,
        token,
        String(streams),
        '64',
        String(maxHostCallBytes - 64),
      ],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    )
    const ends: string[] = []
    attacker.stdout?.on('data', (chunk: Buffer) => ends.push(...chunk.toString().trim().split('\n')))
    try {
      await eventually(() => ends.length === streams, 20_000, 'every stream to end')
      await new Promise((resolve) => setTimeout(resolve, 500))
    } finally {
      clearInterval(watch)
    }
    const cpuMs = (() => {
      const cpu = process.cpuUsage(cpuBefore)
      return (cpu.user + cpu.system) / 1000
    })()
    console.log(
      `host RSS grew ${(most - before).toFixed(0)} MiB at most, ${cpuMs.toFixed(0)} ms of CPU; streams ended ${ends.join(', ')}`,
    )
    expect(served).toBe(0)
    expect(ends).toContain(`status ${status.UNIMPLEMENTED}`)
    expect(new Set(ends)).toEqual(
      new Set(
        ends.filter(
          (end) => end === `status ${status.UNIMPLEMENTED}` || end === `status ${status.RESOURCE_EXHAUSTED}`,
        ),
      ),
    )
    expect(most - before).toBeLessThan(48)
    expect(cpuMs).toBeLessThan(1000)
  })
})
