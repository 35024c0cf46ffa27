import { corralAbiVersion } from '../abi/corral/corral-abi.js'
import { uleb } from '../abi/wasm-binary.js'
import {
  createChannelBuffer,
  HostChannelEnd,
  MessageKind,
  slotBytes,
  WorkerChannelEnd,
} from '../channel/channel.js'
import type { WorkerStartMessage } from '../channel/worker-messages.js'
import { instantiate } from './instantiate.js'
import { serveNextCall } from './serve.js'

const utf8 = new TextEncoder()

const vector = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()]
const section = (id: number, content: number[]): number[] => [id, ...uleb(content.length), ...content]
const name = (text: string): number[] => vector([...utf8.encode(text)].map((byte) => [byte]))
const i32 = 0x7f
const i64 = 0x7e
const funcType = (params: number[], results: number[]): number[] => [
  0x60,
  ...vector(params.map((t) => [t])),
  ...vector(results.map((t) => [t])),
]
const exportFunc = (text: string, index: number): number[] => [...name(text), 0x00, index]
/** A function body: no locals, then `code` (which ends with `end`), after its size. */
const body = (code: number[]): number[] => [...uleb(code.length + 1), 0x00, ...code]

/**
 * The runner's own Corral ABI module, written out here in the binary format (it has no source to
 * build from): one page of memory; `corral_abi_version` answers 1, `corral_alloc` always hands out
 * address 1024, `corral_init` returns its input as its output, and `_initialize` does nothing. It
 * imports the Corral host functions and AssemblyScript's `abort`, which it never calls: V8 builds
 * the code that goes from a module to an import, and from JavaScript to an export, once per thread
 * and signature, and these are the signatures of every Corral plugin's imports and lifecycle exports.
 */
export function warmUpModuleBytes(): Uint8Array<ArrayBuffer> {
  const importFunc = (module: string, field: string, type: number): number[] => [
    ...name(module),
    ...name(field),
    0x00,
    type,
  ]
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(
      1,
      vector([
        funcType([i32, i32, i32, i32], [i64]),
        funcType([i32, i32, i32], []),
        funcType([i32, i32], []),
        funcType([i32, i32, i32, i32], []),
        funcType([], [i32]),
        funcType([i32], [i32]),
        funcType([i32, i32], [i64]),
        funcType([], []),
      ]),
    ),
    ...section(
      2,
      vector([
        importFunc('corral', 'host_call', 0),
        importFunc('corral', 'log', 1),
        importFunc('corral', 'error', 2),
        importFunc('env', 'abort', 3),
      ]),
    ),
    ...section(3, vector([[4], [5], [6], [7]])),
    ...section(5, vector([[0x00, 1]])),
    ...section(
      7,
      vector([
        [...name('memory'), 0x02, 0],
        // Functions 0–3 are the imports.
        exportFunc('corral_abi_version', 4),
        exportFunc('corral_alloc', 5),
        exportFunc('corral_init', 6),
        exportFunc('_initialize', 7),
      ]),
    ),
    ...section(
      10,
      vector([
        // i32.const 1
        body([0x41, corralAbiVersion, 0x0b]),
        // i32.const 1024
        body([0x41, ...[0x80, 0x08], 0x0b]),
        // (i64.or (i64.shl (i64.extend_i32_u ptr) 32) (i64.extend_i32_u len))
        body([0x20, 0, 0xad, 0x42, 32, 0x86, 0x20, 1, 0xad, 0x84, 0x0b]),
        body([0x0b]),
      ]),
    ),
  ])
}

/**
 * Runs, once, what a worker runs for a plugin's first load and call, with the module above: the
 * worker's instantiation of a Corral guest (with WASI's imports, granting nothing), and one
 * `corral_init` through a channel of its own, from the host's queue to the worker's reply. A spare
 * worker does this before it is handed out, so that a plugin's load runs code already compiled
 * rather than compiling it on its way (bench row `wasm.load.cached`).
 *
 * It leaves nothing a plugin could see: the instance, its memory and its imports, the channel and
 * its buffer are all its own and unreachable once it returns; the worker's real channel is not
 * touched; and the module-level values of the code it runs are constants and stateless text
 * coders. What stays is compiled code, which no guest can read. A worker is still never reused:
 * the plugin it is handed to is the first and only one it runs.
 */
export async function warmUp(): Promise<void> {
  const plugin = 'corral-warm-up'
  const buffer = createChannelBuffer(slotBytes)
  const end = new WorkerChannelEnd(buffer)
  const warmUpStart: WorkerStartMessage = {
    type: 'start',
    module: new WebAssembly.Module(warmUpModuleBytes()),
    abi: 'corral',
    plugin,
    maxOutputBytes: slotBytes,
    memoryMb: 1,
    wasi: { preopens: [], maxOpenFiles: 0 },
    extism: { maxKernelBytes: 0, maxHttpResponseBytes: 0 },
  }
  const guest = await instantiate(end, warmUpStart)
  const host = new HostChannelEnd(buffer)
  host.queue('corral_init', '{"config":{}}', 1)
  serveNextCall(end, guest, plugin)
  const result = host.peekResult()
  if (result?.kind !== MessageKind.result)
    throw new Error(`the warm-up call failed (message ${result?.kind})`)
  host.shiftResult()
}
