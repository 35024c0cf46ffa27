import { Worker } from 'node:worker_threads'

/** A worker that echoes, with no Corral in the way: what the runner rows are compared with. */
export interface RawEcho {
  /** One message to the worker and its echo back. */
  roundTrip(): Promise<void>
  close(): Promise<void>
}

/**
 * A worker round trip over SharedArrayBuffer + Atomics carrying `bytes` each way: the host copies
 * them in, the worker copies them out and back, the host copies the answer out (what a bytes call
 * must at least do). The measuring thread waits asynchronously, as a host's event loop would.
 */
export function startAtomicsEcho(bytes: number): RawEcho {
  const shared = new SharedArrayBuffer(8 + bytes)
  const flag = new Int32Array(shared, 0, 2)
  const data = new Uint8Array(shared, 8, bytes)
  const worker = new Worker(
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
    { eval: true, workerData: shared },
  )
  const input = new Uint8Array(bytes).map((_, i) => i & 0xff)
  return {
    async roundTrip() {
      data.set(input)
      Atomics.store(flag, 1, 0)
      Atomics.store(flag, 0, 1)
      Atomics.notify(flag, 0)
      const result = Atomics.waitAsync(flag, 1, 0)
      if (result.async) await result.value
      data.slice()
    },
    async close() {
      Atomics.store(flag, 0, 2)
      Atomics.notify(flag, 0)
      await worker.terminate()
    },
  }
}

/**
 * A worker round trip over `postMessage` carrying a ~100-byte JSON string; any number in flight,
 * spread over `workers` workers in turn (what a plugin per worker costs with no Corral in the way).
 */
export function startPostMessageEcho(workers = 1): RawEcho {
  const pending = new Map<number, () => void>()
  const echoes = Array.from({ length: workers }, () => {
    const worker = new Worker(
      `const { parentPort } = require('node:worker_threads')
       parentPort.on('message', ({ id, data }) => parentPort.postMessage({ id, data }))`,
      { eval: true },
    )
    worker.on('message', ({ id }: { id: number }) => {
      pending.get(id)?.()
      pending.delete(id)
    })
    return worker
  })
  let nextId = 0
  const payload = JSON.stringify({ text: 'x'.repeat(80), n: 1 })
  return {
    roundTrip: () =>
      new Promise<void>((resolve) => {
        const id = nextId++
        pending.set(id, resolve)
        ;(echoes[id % workers] as Worker).postMessage({ id, data: payload })
      }),
    close: async () => {
      await Promise.all(echoes.map((worker) => worker.terminate()))
    },
  }
}
