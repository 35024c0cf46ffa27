// host-call-stream-gzip's second attack on several streams of one connection: a stream the host has
// paused (the plugin's slots are full) still has grpc-js inflate and parse what fills its read buffer
// (16 messages, Node's objectMode highWaterMark, and one more in grpc-js's queue), before any slot
// or the bytes-a-second budget is looked at. Its own file, so its own process.
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client, credentials } from '@grpc/grpc-js'
import { afterAll, describe, expect, it } from 'vitest'
import { GrpcBroker } from './grpc-broker.js'
import { maxHostCallBytesInFlight, serveHostService } from './host-service.js'
import { callInFlight, eventually, fixturesDir } from './testing/support.js'

const maxHostCallBytes = 2 << 20 // the default grant's max_host_call_bytes

describe('a plugin that sends gzip-compressed host calls inflating to max_host_call_bytes on several streams', () => {
  const dir = mkdtempSync(join(tmpdir(), 'corral-streams-gzip-'))
  const nowhere = new Client('unix:/nonexistent', credentials.createInsecure())
  const broker = new GrpcBroker(nowhere, { listen: { network: 'unix', socketDir: dir }, name: 'attacker' })
  let attacker: ChildProcess | undefined
  const running: Array<() => void> = []
  afterAll(() => {
    attacker?.kill('SIGKILL')
    for (const end of running.splice(0)) end()
    broker.close()
    nowhere.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('holds at most a bounded amount of a plugin’s inflated host call arguments, however many streams bring them (8 streams, slow calls)', async () => {
    const a = callInFlight({ maxHostCallBytes })
    const at = await broker.serve(
      broker.nextId(),
      (server) =>
        serveHostService(
          server,
          'attacker',
          a.calls,
          () => new Promise((resolve) => running.push(() => resolve(null))),
        ),
      maxHostCallBytes + (16 << 10),
    )
    const rssMiB = () => process.memoryUsage().rss / (1 << 20)
    const before = rssMiB()
    const cpuBefore = process.cpuUsage()
    const streams = 8
    attacker = spawn(
      process.execPath,
      [
        join(fixturesDir, 'host-streams-gzip.mjs'),
        at.address,
        a.token,
        String(streams),
        '40',
        String(maxHostCallBytes - 64),
      ],
      { stdio: 'ignore' },
    )
    const fit = Math.floor(maxHostCallBytesInFlight / (maxHostCallBytes - 64))
    await eventually(() => running.length >= fit, 30_000, 'as many calls as fit to run')
    await new Promise((resolve) => setTimeout(resolve, 3000))
    expect(running.length).toBe(fit)
    const grown = rssMiB() - before
    const cpu = process.cpuUsage(cpuBefore)
    console.log(
      `host RSS grew ${grown.toFixed(0)} MiB, ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms of CPU, for ${running.length} running host calls on ${streams} streams`,
    )
    // The one-stream attack of host-call-stream-gzip stays within this.
    expect(grown).toBeLessThan(128)
  })
})
