import { Worker } from 'node:worker_threads'
import type { BenchReport } from '../harness.js'
import { measureLatency, measureThroughput } from '../harness.js'

/**
 * Raw platform baselines the runner rows compare with: a worker round trip over
 * SharedArrayBuffer + Atomics, and over postMessage (one at a time and 64 in flight).
 */
export default async function baseline(report: BenchReport): Promise<void> {
  // Atomics: the worker waits on a flag, echoes, and notifies back.
  const shared = new Int32Array(new SharedArrayBuffer(8))
  const atomicsWorker = new Worker(
    `const { workerData } = require('node:worker_threads')
     const flag = new Int32Array(workerData)
     for (;;) {
       Atomics.wait(flag, 0, 0)
       if (Atomics.load(flag, 0) === 2) break
       Atomics.store(flag, 0, 0)
       Atomics.store(flag, 1, 1)
       Atomics.notify(flag, 1)
     }`,
    { eval: true, workerData: shared.buffer },
  )
  report.add(
    'baseline.worker.atomics',
    await measureLatency(
      async () => {
        Atomics.store(shared, 1, 0)
        Atomics.store(shared, 0, 1)
        Atomics.notify(shared, 0)
        // Waiting asynchronously keeps the measuring thread's event loop as a host's would be.
        const result = Atomics.waitAsync(shared, 1, 0)
        if (result.async) await result.value
      },
      { iterations: 20_000 },
    ),
  )
  Atomics.store(shared, 0, 2)
  Atomics.notify(shared, 0)
  await atomicsWorker.terminate()

  // The same round trip carrying 1 KiB each way: the host copies it in, the worker copies it out
  // and back, the host copies the answer out (what a bytes call must at least do).
  const kib = 1024
  const sharedKib = new SharedArrayBuffer(8 + kib)
  const flagKib = new Int32Array(sharedKib, 0, 2)
  const dataKib = new Uint8Array(sharedKib, 8, kib)
  const kibWorker = new Worker(
    `const { workerData } = require('node:worker_threads')
     const flag = new Int32Array(workerData, 0, 2)
     const data = new Uint8Array(workerData, 8)
     for (;;) {
       Atomics.wait(flag, 0, 0)
       if (Atomics.load(flag, 0) === 2) break
       data.set(data.slice())
       Atomics.store(flag, 0, 0)
       Atomics.store(flag, 1, 1)
       Atomics.notify(flag, 1)
     }`,
    { eval: true, workerData: sharedKib },
  )
  const input = new Uint8Array(kib).map((_, i) => i & 0xff)
  report.add(
    'baseline.worker.atomics.1kib',
    await measureLatency(
      async () => {
        dataKib.set(input)
        Atomics.store(flagKib, 1, 0)
        Atomics.store(flagKib, 0, 1)
        Atomics.notify(flagKib, 0)
        const result = Atomics.waitAsync(flagKib, 1, 0)
        if (result.async) await result.value
        dataKib.slice()
      },
      { iterations: 20_000 },
    ),
  )
  Atomics.store(flagKib, 0, 2)
  Atomics.notify(flagKib, 0)
  await kibWorker.terminate()

  const echoWorker = new Worker(
    `const { parentPort } = require('node:worker_threads')
     parentPort.on('message', ({ id, data }) => parentPort.postMessage({ id, data }))`,
    { eval: true },
  )
  const pending = new Map<number, () => void>()
  echoWorker.on('message', ({ id }: { id: number }) => {
    pending.get(id)?.()
    pending.delete(id)
  })
  let nextId = 0
  const payload = JSON.stringify({ text: 'x'.repeat(80), n: 1 })
  const roundTrip = () =>
    new Promise<void>((resolve) => {
      const id = nextId++
      pending.set(id, resolve)
      echoWorker.postMessage({ id, data: payload })
    })
  report.add('baseline.worker.postMessage', await measureLatency(roundTrip, { iterations: 20_000 }))
  report.add(
    'baseline.worker.postMessage.64',
    await measureThroughput(roundTrip, { total: 100_000, inFlight: 64 }),
  )
  await echoWorker.terminate()
}
